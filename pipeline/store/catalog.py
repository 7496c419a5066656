"""The DuckDB catalog: WORKSPACE/catalog.duckdb holds views over every committed version's Parquet
files (pairs, lineage, quarantine, ledger, signals, versions), each led by `dataset` and `version`
taken from the file's path, plus the real table `hub_pushes`. Paths are absolute, so the DuckDB CLI
can open the file from any directory. The views glob the version folders at query time; a refresh
is needed only to turn the typed empty views of a fresh workspace into real ones. A read through a
view fails when any committed version lacks the view's file or holds an unreadable one, so a
damaged version never silently drops out of a result."""
from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.schema import schema
from pipeline.store.layout import (MANIFEST_FILE, TABLES, VERSION_FILE, StoreError, catalog_path, dataset_names,
                                   datasets_dir, sql_literal, versions_of, workspace_path)

log = logging.getLogger(__name__)
LOCK_TIMEOUT_S = 15.0
VIEWS = {**{t: f"{t}.parquet" for t in TABLES}, "versions": VERSION_FILE}
PATH_RE = r"/datasets/([A-Za-z0-9][A-Za-z0-9._-]*)/v([1-9][0-9]*)/[^/]+$"
HUB_PUSHES = """CREATE TABLE IF NOT EXISTS hub_pushes (
    dataset VARCHAR NOT NULL, version BIGINT NOT NULL, repo_id VARCHAR NOT NULL,
    commit_sha VARCHAR, commit_url VARCHAR, pushed_at TIMESTAMPTZ NOT NULL)"""


def _is_lock_error(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@contextmanager
def connect(workspace, read_only: bool = False, timeout: float = LOCK_TIMEOUT_S):
    """A connection to the catalog, retrying with backoff while another process holds its lock."""
    path = catalog_path(workspace)
    deadline, delay = time.monotonic() + timeout, 0.02
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.ConnectionException as exc:
            # this process already has the file open read-write: share that instead of failing
            if read_only and "different configuration" in str(exc):
                read_only = False
                continue
            raise StoreError(f"cannot open catalog {path}: {exc}") from exc
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise StoreError(f"cannot open catalog {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StoreError(f"catalog {path} is locked by another process (waited {timeout:.0f} s): "
                                 f"{exc}") from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)
    try:
        yield con
    finally:
        con.close()


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return f"{_sql_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_sql_type(f.type)}' for f in t) + ")"
    simple = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
              pa.binary(): "BLOB"}
    if t not in simple:
        raise StoreError(f"no DuckDB type for Arrow type {t}")
    return simple[t]


def _has_files(ws: Path, filename: str) -> bool:
    return any((datasets_dir(ws) / name / f"v{v}" / filename).is_file()
               for name in dataset_names(ws) for v in versions_of(ws, name))


def _view_sql(ws: Path, view: str, filename: str) -> str:
    table_schema = schema("manifest" if view == "versions" else view)
    columns = [f for f in table_schema if f.name not in ("dataset", "version")]
    if not _has_files(ws, MANIFEST_FILE):  # no version yet (with versions, a missing file must fail a read)
        typed = ", ".join(f'CAST(NULL AS {_sql_type(f.type)}) AS "{f.name}"' for f in columns)
        return (f"CREATE OR REPLACE VIEW {view} AS SELECT CAST(NULL AS VARCHAR) AS dataset, "
                f"CAST(NULL AS BIGINT) AS version, {typed} WHERE false")
    # a table's parts: TABLE.parquet, TABLE.1.parquet, ... (version.parquet is always one file)
    stem = filename.removesuffix(".parquet")
    glob_name, part = (filename, "") if view == "versions" else (f"{stem}*.parquet", r"(\.[0-9]+)?")
    file_re = PATH_RE.replace("[^/]+$", stem + part + r"\.parquet$")
    pattern = sql_literal(str(datasets_dir(ws) / "*" / "v*" / glob_name))
    regex, names = sql_literal(PATH_RE), ", ".join(f'"{f.name}"' for f in columns)
    return (f"CREATE OR REPLACE VIEW {view} AS SELECT regexp_extract(filename, {regex}, 1) AS dataset, "
            f"CAST(regexp_extract(filename, {regex}, 2) AS BIGINT) AS version, {names} "
            f"FROM read_parquet({pattern}, filename = true, union_by_name = true, hive_partitioning = false) "
            f"WHERE regexp_matches(filename, {sql_literal(file_re)}) AND {_all_present(ws, pattern, file_re)}")


def _all_present(ws: Path, pattern: str, file_re: str) -> str:
    """A condition that raises (DuckDB's error()) when a file that a committed version's manifest
    lists for this view is missing from its folder: a damaged version makes a read fail instead of
    silently dropping out of it. A truncated or unreadable file fails in read_parquet itself."""
    manifests = sql_literal(str(datasets_dir(ws) / "*" / "v*" / MANIFEST_FILE))
    message, hint = sql_literal("damaged version: missing "), sql_literal(" (run `prefmill verify`)")
    return (f"(SELECT CASE WHEN count(*) > 0 THEN error({message} || string_agg(f, ', ') || {hint}) END FROM ("
            f"SELECT parse_dirpath(filename) || '/' || unnest(json_keys(json, '$.files')) AS f "
            f"FROM read_json_objects({manifests}, filename = true) WHERE regexp_matches(filename, {sql_literal(PATH_RE)}) "
            f"EXCEPT SELECT file FROM glob({pattern})) WHERE regexp_matches(f, {sql_literal(file_re)})) IS NULL")


def refresh_catalog(workspace) -> Path:
    """(Re)create WORKSPACE/catalog.duckdb's views and the hub_pushes table; returns its path."""
    ws = workspace_path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    statements = [_view_sql(ws, view, filename) for view, filename in VIEWS.items()]
    with connect(ws) as con:
        try:
            con.execute("BEGIN TRANSACTION")
            for sql in statements:
                con.execute(sql)
            con.execute(HUB_PUSHES)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise StoreError(f"cannot refresh catalog {catalog_path(ws)}: {exc}") from exc
    return catalog_path(ws)


def refresh_catalog_quietly(workspace) -> None:
    """After a commit: the version is already durable, so a locked catalog is a warning, not a failure
    (its views glob the version folders and see the new version anyway once they exist)."""
    try:
        refresh_catalog(workspace)
    except StoreError as exc:
        log.warning("version committed but the catalog was not refreshed: %s", exc)


def query(workspace, sql: str) -> pa.Table:
    """Run `sql` against the catalog (opened read-only) and return the result as an Arrow table."""
    if not catalog_path(workspace).exists():
        refresh_catalog(workspace)
    with connect(workspace, read_only=True) as con:
        try:
            return con.sql(sql).to_arrow_table()
        except AttributeError as exc:  # a statement with no result (con.sql returned None)
            raise StoreError(f"query returned no result: {sql!r}") from exc
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc


def record_hub_push(workspace, dataset: str, version: int, repo_id: str, commit_sha: str | None,
                    commit_url: str | None) -> None:
    if not catalog_path(workspace).exists():
        refresh_catalog(workspace)
    with connect(workspace) as con:
        con.execute(HUB_PUSHES)
        con.execute("INSERT INTO hub_pushes VALUES (?, ?, ?, ?, ?, ?)",
                    [dataset, version, repo_id, commit_sha, commit_url, datetime.now(timezone.utc)])

