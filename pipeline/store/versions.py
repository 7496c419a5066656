"""List committed versions from their version.parquet rows (no catalog needed, so no lock)."""
from __future__ import annotations

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import conform, empty
from pipeline.store.layout import (MANIFEST_FILE, VERSION_FILE, StoreError, check_name, dataset_names,
                                   resolve_ref, version_dir, versions_of)

log = logging.getLogger(__name__)


def list_versions(workspace, dataset: str | None = None) -> pa.Table:
    """One row per committed version (schema "manifest"), ordered by dataset then version.
    Commits in progress (.tmp-* folders) are never listed."""
    names = [check_name(dataset)] if dataset is not None else dataset_names(workspace)
    parts = []
    for name in names:
        for v in versions_of(workspace, name):
            path = version_dir(workspace, name, v) / VERSION_FILE
            try:
                parts.append(conform("manifest", pq.read_table(path)))
            except Exception as exc:  # noqa: BLE001 - one damaged version must not hide the others
                log.warning("skipping %s@%d: unreadable %s (%s); run verify", name, v, VERSION_FILE, exc)
    return pa.concat_tables(parts) if parts else empty("manifest")


def read_manifest(workspace, ref) -> dict:
    """The manifest.json of the version `ref` names."""
    concrete, vdir = resolve_ref(workspace, ref)
    try:
        return json.loads((vdir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{concrete}: unreadable {MANIFEST_FILE}: {exc} (run verify)") from exc
