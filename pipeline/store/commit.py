"""Commit a dataset version: validate the tables, write them into a private temp folder, then make
the version visible with one atomic rename. A crash leaves no visible partial version; two writers
racing for the same number both succeed with distinct numbers."""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import stat
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import duck
from pipeline.schema import SchemaError, conform, empty, schema
from pipeline.store import manifest as mf
from pipeline.store.catalog import refresh_catalog_quietly
from pipeline.store.layout import (MANIFEST_FILE, REQUIRED_TABLES, TABLES, TMP_PREFIX, VERSION_FILE, StoreError,
                                   check_name, dataset_dir, latest_version, part_name, sql_list, table_files,
                                   version_dir, workspace_path)
from pipeline.store.verify import file_facts
from pipeline.store.versions import read_manifest

log = logging.getLogger(__name__)
MAX_RENAME_ATTEMPTS = 1000
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_locks: dict[Path, int] = {}  # staging folder -> the open descriptor holding its lock


def conform_tables(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    if not isinstance(tables, dict):
        raise StoreError(f"tables must be a dict of pyarrow Tables, got {type(tables).__name__}")
    unknown = sorted(set(tables) - set(TABLES))
    missing = [t for t in REQUIRED_TABLES if tables.get(t) is None]
    if unknown or missing:
        raise StoreError(f"tables: missing {missing}, unknown {unknown} (expected {list(TABLES)})")
    out = {}
    for name in TABLES:
        table = tables.get(name)
        try:
            out[name] = empty(name) if table is None else conform(name, table)
        except SchemaError as exc:
            raise StoreError(f"table {name} does not match schemas/{name}.yaml: {exc}") from exc
    ids = out["pairs"]["pair_id"]
    duplicates = ids.length() - pc.count_distinct(ids).as_py()
    if duplicates:
        raise StoreError(f"pairs: {duplicates} duplicate pair_id value(s); pair_id is the key of a version")
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_parquet(path: Path, table: pa.Table) -> dict:
    pq.write_table(table, path, compression="zstd")
    _fsync(path)
    return file_facts(path, table.num_rows)


def _write_manifest_files(tmp: Path, manifest: dict) -> dict:
    """version.parquet, then manifest.json LAST (it lists version.parquet's hash too)."""
    for name in (VERSION_FILE, MANIFEST_FILE):
        (tmp / name).unlink(missing_ok=True)  # a retry for the next number rewrites both
    data_files = {k: v for k, v in manifest["files"].items() if k != VERSION_FILE}
    manifest = {**manifest, "files": data_files}
    version_facts = _write_parquet(tmp / VERSION_FILE, mf.version_row(manifest))
    manifest = {**manifest, "files": {**data_files, VERSION_FILE: version_facts}}
    path = tmp / MANIFEST_FILE
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(mf.to_json(manifest) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    for f in (VERSION_FILE, MANIFEST_FILE):
        os.chmod(tmp / f, READ_ONLY)
    _fsync(tmp)
    return manifest


def _publish(ddir: Path, tmp: Path, workspace: Path, dataset: str, manifest: dict, base: int | None = None) -> dict:
    """Rename tmp to the next free vN; on a lost race, renumber and retry. The parent is `base`
    when given (what an incremental version was built on), else the latest version."""
    number = 0
    for _ in range(MAX_RENAME_ATTEMPTS):
        latest = latest_version(workspace, dataset) or 0
        number = max(number + 1, latest + 1)
        final = mf.stamp(manifest, number, base if base is not None else latest or None)
        final = _write_manifest_files(tmp, final)
        try:
            os.rename(tmp, ddir / f"v{number}")
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                log.info("v%d of %s was taken by another writer; trying the next number", number, dataset)
                continue
            raise
        _fsync(ddir)
        return final
    raise StoreError(f"could not find a free version number for {dataset} after {MAX_RENAME_ATTEMPTS} attempts")


def commit_version(workspace: Path, dataset: str, tables: dict[str, pa.Table], manifest: dict,
                   base: int | None = None, into: Path | None = None) -> dict:
    """Write `tables` as the next version of `dataset` and return its final manifest. With `base`
    (an incremental run), `tables` hold the new rows only and join version `base`'s (commit_staged).

    `tables` has keys pairs, lineage, quarantine, ledger and optionally signals; each is validated
    against its schema. `manifest` carries the dataset-level facts (flow_run_id, config, config_hash,
    code_version, inputs, counts, ledger, stats); the store adds dataset, version, parent, created and
    files. Refuses (StoreError) when the ledger does not balance.

    `into`: write the version in this folder (inside a run's own staging folder, so a killed
    commit leaves nothing behind that its rerun does not clear), else in a fresh one."""
    check_name(dataset)
    conformed = conform_tables(tables)
    prepared = mf.prepare(dataset, manifest, conformed["pairs"].num_rows, conformed["ledger"])
    if into is None:
        tmp = stage(workspace, dataset)
    else:
        shutil.rmtree(into, ignore_errors=True)  # what a killed commit wrote
        into.mkdir()
        tmp = into
    try:
        for name, table in conformed.items():
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
        if base is not None:
            return commit_staged(workspace, dataset, tmp, manifest, base)
        return _seal_and_publish(workspace, dataset, tmp, prepared)
    except BaseException:
        discard(tmp)
        raise


def stage(workspace: Path, dataset: str, run_key: str | None = None) -> Path:
    """A private folder for a version being written (`.tmp-...` beside the versions, never listed
    or read); hand it to commit_staged, or to discard on failure. With a `run_key` the folder is
    the run's own (`.tmp-run-KEY`): a run killed before its commit left it behind, and the rerun
    resumes from it. It is locked while a run writes it (a second run with the same key is refused)."""
    check_name(dataset)
    ddir = dataset_dir(workspace_path(workspace), dataset)
    ddir.mkdir(parents=True, exist_ok=True)
    if run_key is None:
        tmp = ddir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir()
        return tmp
    tmp = run_dir(workspace, dataset, run_key)
    tmp.mkdir(exist_ok=True)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"another run of the same inputs and config is writing {dataset} ({tmp.name})") from None
    _locks[tmp] = fd
    return tmp


def run_dir(workspace: Path, dataset: str, run_key: str) -> Path:
    """The staging folder of the run with this key (see stage)."""
    return dataset_dir(workspace_path(workspace), dataset) / f"{TMP_PREFIX}run-{run_key}"


def discard(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    _unlock(tmp)


def _unlock(tmp: Path) -> None:
    fd = _locks.pop(tmp, None)
    if fd is not None:
        os.close(fd)


def committed_run(workspace: Path, dataset: str, run_key: str) -> dict | None:
    """The latest version's manifest when a run with this key committed it (a rerun after a kill
    that came after the commit), else None."""
    if latest_version(workspace_path(workspace), dataset) is None:
        return None
    manifest = read_manifest(workspace, dataset)
    return manifest if manifest.get("run_key") == run_key else None


def commit_staged(workspace: Path, dataset: str, tmp: Path, manifest: dict, base: int | None = None) -> dict:
    """Publish a staged folder holding `TABLE.parquet` for every table (written in pieces by the
    streamed path): each file's schema is checked against its contract, pair ids must be unique
    and the ledger must balance, as for commit_version. The folder is discarded on refusal.

    With `base` (an incremental run) the staged files hold only the run's new rows: each becomes
    the next part of its table after version `base`'s parts, which are hard-linked in unchanged
    (no copy, no rehash; the base's ledger was checked at its commit), and the new version's
    parent is `base`."""
    try:
        for name in TABLES:
            path = tmp / f"{name}.parquet"
            if not path.exists():
                raise StoreError(f"staged version lacks {path.name}")
            found, want = pq.read_schema(path).remove_metadata(), schema(name)
            if not found.equals(want):
                raise StoreError(f"{path.name} does not match schemas/{name}.yaml: {found} != {want}")
        known = _carry_parts(workspace, dataset, tmp, base) if base is not None else {}
        pairs_rows, duplicates = _duplicate_pair_ids(table_files(tmp, "pairs"), known)
        if duplicates:
            raise StoreError(f"pairs: {duplicates} duplicate pair_id value(s); pair_id is the key of a version")
        ledger = pa.concat_tables([pq.read_table(p, columns=["status", "reason"])
                                   for p in table_files(tmp, "ledger") if p.name not in known]
                                  or [empty("ledger").select(["status", "reason"])])
        if base is not None:
            new_pairs = pairs_rows - sum(f["rows"] for n, f in known.items() if n.startswith("pairs"))
            parent = read_manifest(workspace, f"{dataset}@{base}")["ledger"]
            manifest = {**manifest, "ledger": mf.add_ledgers(parent, mf.ledger_from_table(ledger, new_pairs))}
            ledger = None
        prepared = mf.prepare(dataset, manifest, pairs_rows, ledger)
        del ledger
        return _seal_and_publish(workspace, dataset, tmp, prepared, known, base)
    except BaseException:
        discard(tmp)
        raise


def _duplicate_pair_ids(files: list[Path], known: dict[str, dict]) -> tuple[int, int]:
    """(rows, rows whose pair_id an earlier row has) over a table's parts. The parts in `known` (a
    base version's, unique since its commit) are not grouped again: the new parts' ids are checked
    among themselves and against theirs, so an increment costs a scan of the base's ids, not a
    distinct count over the whole version."""
    new = [f for f in files if f.name not in known]
    base = [f for f in files if f.name in known]
    con = duck.connect()
    try:
        rows, distinct = con.execute(f"SELECT count(*), count(DISTINCT pair_id) FROM read_parquet({sql_list(new)})"
                                     ).fetchall()[0] if new else (0, 0)
        if base:
            base_rows = con.execute(f"SELECT count(*) FROM read_parquet({sql_list(base)})").fetchall()[0][0]
            clashes = con.execute(f"SELECT count(*) FROM read_parquet({sql_list(base)}) b SEMI JOIN "
                                  f"read_parquet({sql_list(new)}) n USING (pair_id)").fetchall()[0][0] if new else 0
            rows, distinct = rows + base_rows, distinct + base_rows - clashes
    finally:
        con.close()
    return rows, rows - distinct


def _carry_parts(workspace: Path, dataset: str, tmp: Path, base: int) -> dict[str, dict]:
    """Hard-link version `base`'s table files into `tmp` and rename each staged file to its
    table's next part (an empty one is dropped). Returns the carried files' facts, from the base's
    manifest."""
    base_dir = version_dir(workspace_path(workspace), dataset, base)
    facts = read_manifest(workspace, f"{dataset}@{base}")["files"]
    known = {}
    for name in TABLES:
        parts = table_files(base_dir, name)
        staged = tmp / f"{name}.parquet"
        if pq.ParquetFile(staged).metadata.num_rows:
            staged.rename(tmp / part_name(name, len(parts)))
        else:
            staged.unlink()
        for part in parts:
            try:
                os.link(part, tmp / part.name)
            except OSError:  # a file system without hard links: copy (the files are immutable either way)
                shutil.copy2(part, tmp / part.name)
            known[part.name] = facts[part.name]
    return known


def _seal_and_publish(workspace: Path, dataset: str, tmp: Path, prepared: dict, known: dict | None = None,
                      base: int | None = None) -> dict:
    """fsync and freeze the data files, record their facts (`known` ones are a parent's, carried
    unchanged), then publish."""
    ws = workspace_path(workspace)
    known = known or {}
    for name in TABLES:
        for path in table_files(tmp, name):
            if path.name in known:
                prepared["files"][path.name] = known[path.name]
                continue
            _fsync(path)
            prepared["files"][path.name] = file_facts(path, pq.ParquetFile(path).metadata.num_rows)
            os.chmod(path, READ_ONLY)
    final = _publish(dataset_dir(ws, dataset), tmp, ws, dataset, prepared, base)
    _unlock(tmp)
    refresh_catalog_quietly(ws)
    return final
