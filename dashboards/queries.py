"""Run the dashboard's SQL files against the catalog. Each file reads the version it describes from
the DuckDB variables `dataset` and `version`, so the same file runs unchanged in the DuckDB CLI."""
from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.store.catalog import connect, refresh_catalog
from pipeline.store.layout import StoreError, VersionRef, catalog_path

QUERIES_DIR = Path(__file__).resolve().parent / "queries"


def query_names() -> list[str]:
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql"))


def sql_of(name: str) -> str:
    return (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")


def run_queries(workspace, ref: VersionRef, names: list[str] | None = None) -> dict[str, list[dict]]:
    """Every named query (all by default) for version `ref`, as lists of row dicts."""
    if not catalog_path(workspace).exists():
        refresh_catalog(workspace)
    out = {}
    with connect(workspace, read_only=True) as con:
        con.execute("SET VARIABLE dataset = ?", [ref.dataset])
        con.execute("SET VARIABLE version = ?", [ref.version])
        for name in names or query_names():
            try:
                out[name] = con.sql(sql_of(name)).to_arrow_table().to_pylist()
            except duckdb.Error as exc:
                raise StoreError(f"dashboard query {name}.sql failed for {ref.dataset}@{ref.version}: {exc}") from exc
    return out
