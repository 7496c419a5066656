"""Write a file so readers see the old content or the new, never a partial one: write beside the
target under a private name, then rename over it (atomic on POSIX within one file system)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")


def write_parquet(table: pa.Table, path: str | Path) -> None:
    path = Path(path)
    tmp = _tmp(path)
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)
