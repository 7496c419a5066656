"""The ledger: every input record ends up kept (it contributed to a kept pair), filtered (valid
but no surviving pair: the filter or signal that stopped it, with the reason) or quarantined."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.schema import conform
from pipeline.store.manifest import ledger_from_table

LEDGER_SQL = """
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
"""


def build_ledger(records: pa.Table, quarantine: pa.Table, lineage: pa.Table,
                 unpaired: pa.Table) -> tuple[pa.Table, dict]:
    """The ledger table and its summary for the manifest."""
    ledger = ledger_table(records, quarantine, lineage, unpaired)
    return ledger, ledger_from_table(ledger, int(pc.sum(lineage["kept"]).as_py() or 0))


def ledger_table(records: pa.Table, quarantine: pa.Table, lineage: pa.Table, unpaired: pa.Table) -> pa.Table:
    """`records` lists the input records read; a quarantine row for a record missing there
    (e.g. a whole unreadable file) still counts as an input."""
    con = duck.connect()
    try:
        for name, table in (("records", records), ("quarantine", quarantine), ("lineage", lineage),
                            ("unpaired", unpaired)):
            con.register(name, table)
        twice = con.execute("SELECT count(*) - count(DISTINCT record_id) FROM records").fetchall()[0][0]
        if twice:
            raise ValueError("ledger: input record ids are not unique; two records would be counted as one")
        return conform("ledger", con.sql(LEDGER_SQL).to_arrow_table())
    finally:
        con.close()
