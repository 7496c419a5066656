"""The ledger: every input record ends up kept (it contributed to a kept pair), filtered (valid
but no surviving pair: the filter or signal that stopped it, with the reason) or quarantined."""
from __future__ import annotations

import duckdb
import pyarrow as pa

from pipeline.schema import conform


def build_ledger(records: pa.Table, quarantine: pa.Table, lineage: pa.Table,
                 unpaired: pa.Table) -> tuple[pa.Table, dict]:
    """`records` lists the input records read; a quarantine row for a record missing there
    (e.g. a whole unreadable file) still counts as an input."""
    con = duckdb.connect()
    for name, table in (("records", records), ("quarantine", quarantine), ("lineage", lineage),
                        ("unpaired", unpaired)):
        con.register(name, table)
    ledger = con.sql("""
        WITH q AS (SELECT record_id, first(error_kind || ': ' || message ORDER BY line) AS reason
                   FROM quarantine GROUP BY record_id),
             kept AS (SELECT DISTINCT unnest(input_ids) AS record_id FROM lineage WHERE kept),
             dropped AS (
                SELECT record_id, first(reason ORDER BY pair_id) AS reason FROM (
                    SELECT unnest(input_ids) AS record_id, pair_id,
                           dropped_by || ': ' || list_filter(decisions, lambda d: NOT d.passed)[1].reason AS reason
                    FROM lineage WHERE NOT kept) GROUP BY record_id),
             unp AS (SELECT record_id, first(reason) AS reason FROM unpaired GROUP BY record_id)
        SELECT r.record_id, r.source_file, r.line,
               CASE WHEN q.record_id IS NOT NULL THEN 'quarantined'
                    WHEN kept.record_id IS NOT NULL THEN 'kept' ELSE 'filtered' END AS status,
               CASE WHEN q.record_id IS NOT NULL THEN q.reason
                    WHEN kept.record_id IS NOT NULL THEN NULL
                    ELSE coalesce(dropped.reason, unp.reason, 'no signal made a pair from this record') END AS reason
        FROM (SELECT record_id, source_file, line FROM records
              UNION SELECT record_id, source_file, line FROM quarantine) r
        LEFT JOIN q USING (record_id) LEFT JOIN kept USING (record_id)
        LEFT JOIN dropped USING (record_id) LEFT JOIN unp USING (record_id)
        ORDER BY r.source_file, r.line
    """).arrow()
    ledger = ledger.read_all() if hasattr(ledger, "read_all") else ledger
    con.register("ledger", ledger)
    counts = dict(con.sql("SELECT status, count(*) FROM ledger GROUP BY status").fetchall())
    # reasons grouped by their stable part (numbers in parentheses stripped)
    reasons = {s: dict(con.sql(f"""SELECT regexp_replace(reason, '\\s*\\(.*$', '') AS r, count(*) FROM ledger
                                   WHERE status = '{s}' GROUP BY r ORDER BY count(*) DESC, r""").fetchall())
               for s in ("filtered", "quarantined")}
    summary = {"inputs": ledger.num_rows, "kept": counts.get("kept", 0),
               "filtered": counts.get("filtered", 0), "quarantined": counts.get("quarantined", 0),
               "pairs": int(lineage.filter(lineage["kept"]).num_rows),
               "filtered_reasons": reasons["filtered"], "quarantine_reasons": reasons["quarantined"]}
    return conform("ledger", ledger), summary
