"""Content hashes over Arrow columns. A pair's id is the hash of its whitespace-normalized
content, so the same pair made by two runs (or two sources) has the same id."""
from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc


def normalize_ws(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Collapse runs of whitespace to one space and trim: the form the tie rule compares."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(texts, r"\s+", " "))


def messages_text(messages: pa.Array | pa.ChunkedArray, with_roles: bool = True) -> pa.Array:
    """One normalized string per message list: 'role: content' joined by a record separator."""
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    flat = messages.flatten()
    content = normalize_ws(flat.field("content"))
    parts = pc.binary_join_element_wise(flat.field("role"), content, ": ") if with_roles else content
    rebuilt = pa.ListArray.from_arrays(messages.offsets, parts)
    return pc.binary_join(rebuilt, "\x1e")


def sha256_hex(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pa.array([hashlib.sha256(t.encode()).hexdigest() for t in texts.to_pylist()], pa.string())


def prompt_ids(prompt: pa.Array | pa.ChunkedArray) -> pa.Array:
    return sha256_hex(messages_text(prompt))


def pair_ids(prompt, chosen, rejected) -> pa.Array:
    joined = pc.binary_join_element_wise(messages_text(prompt), messages_text(chosen),
                                         messages_text(rejected), "\x1d")
    return sha256_hex(joined)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
