"""Input readers and normalizers: files of conversations, user-generated content, edits and human
judgments -> the canonical tables (schemas/), with every bad record quarantined and PII scrubbed."""
from .batch import SourceBatch, merge
from .ingest import NoMatch, expand_inputs, read_file, read_inputs, unique_labels

__all__ = ["NoMatch", "SourceBatch", "expand_inputs", "merge", "read_file", "read_inputs", "unique_labels"]
