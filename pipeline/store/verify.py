"""Check a committed version against its manifest: every listed file present with the recorded
size and SHA-256, nothing unexpected beside them, and a readable, self-consistent manifest."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.hashing import file_sha256
from pipeline.store.layout import MANIFEST_FILE, PART_RE, resolve_ref
from pipeline.store.manifest import ledger_problems


def sha256_file(path: Path) -> str:
    return file_sha256(path)[0]


def file_facts(path: Path, rows: int) -> dict:
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def verify_version(workspace, ref) -> list[str]:
    """Problems with the version `ref` names, one line each; [] when it is intact."""
    concrete, vdir = resolve_ref(workspace, ref)
    try:
        manifest = json.loads((vdir / MANIFEST_FILE).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
    except FileNotFoundError:
        return [f"{concrete}: missing file: {MANIFEST_FILE}"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return [f"{concrete}: unreadable manifest {MANIFEST_FILE}: {type(exc).__name__}: {exc}"]

    problems = []
    if (manifest.get("dataset"), manifest.get("version")) != (concrete.dataset, concrete.version):
        problems.append(f"{concrete}: manifest names {manifest.get('dataset')}@{manifest.get('version')}, "
                        f"not the folder it is in")
    for name, want in sorted(files.items()):
        path = vdir / name
        if not path.is_file():
            problems.append(f"{concrete}: missing file: {name}")
            continue
        size = path.stat().st_size
        if size != want.get("bytes"):
            problems.append(f"{concrete}: changed file: {name} (size {size} bytes, manifest says {want.get('bytes')})")
            continue
        digest = sha256_file(path)
        if digest != want.get("sha256"):
            problems.append(f"{concrete}: changed file: {name} (sha256 {digest[:12]}…, "
                            f"manifest says {str(want.get('sha256'))[:12]}…)")
            continue
        if name.endswith(".parquet"):
            try:
                rows = pq.ParquetFile(path).metadata.num_rows
            except Exception as exc:  # noqa: BLE001 - any reader failure is a problem to report
                problems.append(f"{concrete}: unreadable file: {name}: {exc}")
                continue
            if rows != want.get("rows"):
                problems.append(f"{concrete}: {name} has {rows} rows, manifest says {want.get('rows')}")
    for path in sorted(vdir.iterdir()):
        if path.name != MANIFEST_FILE and path.name not in files:
            problems.append(f"{concrete}: unexpected file: {path.name}")
    ledger = manifest.get("ledger")
    if not isinstance(ledger, dict):
        problems.append(f"{concrete}: manifest has no ledger")
    else:
        parts = [f.get("rows") for n, f in files.items() if (m := PART_RE.fullmatch(n)) and m.group(1) == "pairs"]
        pairs_rows = sum(parts) if parts and all(isinstance(r, int) for r in parts) else None
        problems += [f"{concrete}: {p}" for p in ledger_problems(ledger, None, pairs_rows)]
    return problems
