"""Versioned preference-dataset store: immutable numbered versions of Parquet tables with a
manifest, a DuckDB catalog over all of them, diff, verify and export to Hugging Face `datasets`."""
from pipeline.store.catalog import query, refresh_catalog
from pipeline.store.commit import commit_version
from pipeline.store.diff import diff_versions
from pipeline.store.export import export_version
from pipeline.store.layout import StoreError, VersionRef, resolve
from pipeline.store.verify import verify_version
from pipeline.store.versions import list_versions, read_manifest

__all__ = ["commit_version", "list_versions", "resolve", "refresh_catalog", "query", "diff_versions",
           "verify_version", "export_version", "read_manifest", "VersionRef", "StoreError"]
