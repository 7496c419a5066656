"""Compare the pairs of two versions in DuckDB: added / removed (by pair_id), changed (same pair_id,
different scores, margin, weight or annotator) and flipped (same prompt, chosen and rejected
swapped). A flipped pair has a new pair_id, so it is also counted once in added and once in removed."""
from __future__ import annotations

import duckdb

from pipeline.store.layout import StoreError, resolve_ref, sql_list, table_files

EXAMPLES = 5
COMPARED = ("score_chosen", "score_rejected", "margin", "weight", "annotator")

QUERIES = {
    "added": "SELECT pair_id FROM b ANTI JOIN a USING (pair_id)",
    "removed": "SELECT pair_id FROM a ANTI JOIN b USING (pair_id)",
    "changed": "SELECT pair_id FROM a JOIN b USING (pair_id) WHERE "
               + " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in COMPARED),
    "unchanged": "SELECT pair_id FROM a JOIN b USING (pair_id) WHERE "
                 + " AND ".join(f"a.{c} IS NOT DISTINCT FROM b.{c}" for c in COMPARED),
    "flipped": "SELECT DISTINCT b.pair_id FROM a JOIN b ON a.prompt_id = b.prompt_id "
               "AND a.chosen = b.rejected AND a.rejected = b.chosen",
}


def _summary(con: duckdb.DuckDBPyConnection, sql: str) -> dict:
    rows = con.execute(f"SELECT pair_id, count(*) OVER () FROM ({sql}) ORDER BY pair_id LIMIT {EXAMPLES}").fetchall()
    return {"count": rows[0][1] if rows else 0, "examples": [r[0] for r in rows]}


def diff_versions(workspace, ref_a, ref_b) -> dict:
    """What changed in the pairs from version `ref_a` to version `ref_b`: counts and up to five
    example pair_ids per kind (for flipped, the pair_id in `ref_b`)."""
    a, dir_a = resolve_ref(workspace, ref_a)
    b, dir_b = resolve_ref(workspace, ref_b)
    with duckdb.connect() as con:
        try:
            for alias, folder in (("a", dir_a), ("b", dir_b)):
                con.execute(f"CREATE TEMP VIEW {alias} AS SELECT * FROM "
                            f"read_parquet({sql_list(table_files(folder, 'pairs'))}, "
                            "hive_partitioning = false)")
            out = {"a": str(a), "b": str(b),
                   "pairs": {"a": con.execute("SELECT count(*) FROM a").fetchone()[0],
                             "b": con.execute("SELECT count(*) FROM b").fetchone()[0]}}
            out.update({kind: _summary(con, sql) for kind, sql in QUERIES.items()})
        except duckdb.Error as exc:
            raise StoreError(f"cannot diff {a} and {b}: {exc} (run verify on both versions)") from exc
    return out
