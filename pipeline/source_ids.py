"""The source ids a version's records carried (conversation, post and edit ids) and the accepted
answers its questions named, so that an incremental in-memory run applies the rules that span
the whole run across its parent too: a record whose id the parent already read is quarantined as
a duplicate (the parent's record kept the id), and an answer a parent's question named as
accepted is accepted.

A cache per version (`cache/source-ids/NAME/vN/part-*.parquet`, rows `table, id, record_id`;
accepted answers as table `accepted`, id `question_id␟answer_id`), in parts like the prompt index:
the parent's parts (hard links) plus the run's own. The ids are not in the version's tables, so a
missing index cannot be rebuilt: the incremental run is then a full one (pipeline/incremental.py)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.sources.batch import ACCEPTED, ID_COLUMNS, LINK_SEP, SourceBatch
from pipeline.store.layout import sql_list, workspace_path

IDS = pa.schema([("table", pa.string()), ("id", pa.string()), ("record_id", pa.string())])


def ids_dir(workspace, dataset: str, version: int) -> Path:
    return workspace_path(workspace) / "cache" / "source-ids" / dataset / f"v{version}"


def of_batch(batch: SourceBatch) -> pa.Table:
    """The ids of a run's records (those it kept, after its own duplicates were quarantined) and
    the accepted answers its questions named."""
    links = batch.accepted_answers
    rows = pa.concat_tables([_id_rows(batch), _rows(ACCEPTED, pc.binary_join_element_wise(
        links["question_id"], links["answer_id"], LINK_SEP), links["record_id"])])
    return rows.group_by(["table", "id"], use_threads=False).aggregate([("record_id", "min")]).rename_columns(
        ["table", "id", "record_id"]).select(IDS.names)


def in_parent(parts: list[Path], batches: list[SourceBatch], where: str) -> pa.Table:
    """The rows of the parent's index that concern `batches` (a run's files, before `merge`): the
    ids their records carry, and the accepted-answer links naming one of their answers. Each
    record_id says it is the parent's ("day1.jsonl:5 of parent version v1"). A DuckDB semi-join:
    the parent's index is not loaded."""
    wanted = []
    for batch in batches:
        answers = batch.tables["ugc"].filter(pc.equal(batch.tables["ugc"]["kind"], "answer"))
        wanted += [_id_rows(batch), _rows(ACCEPTED, pc.binary_join_element_wise(
            answers["parent_id"], answers["post_id"], LINK_SEP), answers["record_id"])]
    if not parts:
        return IDS.empty_table()
    con = duck.connect()
    try:
        con.register("wanted", pa.concat_tables(wanted).select(["table", "id"]))
        found = con.sql(f"SELECT p.\"table\", p.id, min(p.record_id) || ' of {where}' AS record_id "
                        f"FROM read_parquet({sql_list(parts)}) p SEMI JOIN wanted w "
                        "ON p.\"table\" = w.\"table\" AND p.id = w.id GROUP BY ALL").to_arrow_table()
    finally:
        con.close()
    return found.cast(IDS)


def _id_rows(batch: SourceBatch) -> pa.Table:
    """(table, id, record_id) of every record of `batch` that carries a conversation, post or edit id."""
    return pa.concat_tables([_rows(name, batch.tables[name][column], batch.tables[name]["record_id"])
                             for name, column in ID_COLUMNS.items()])


def _rows(table: str, ids, record_ids) -> pa.Table:
    ids = pa.chunked_array(ids) if isinstance(ids, pa.Array) else ids
    keep = pc.is_valid(ids)
    return pa.table({"table": pa.array([table] * len(ids), pa.string()), "id": ids,
                     "record_id": record_ids}, schema=IDS).filter(keep)
