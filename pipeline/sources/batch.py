"""SourceBatch: what reading inputs produces, and `merge`, which combines batches and applies the
rules that need the whole run: duplicate ids (the first record keeps the id, later ones are
quarantined) and accepted answers (a question names its accepted answer, possibly in another file)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import as_array, value_counts
from pipeline.schema import conform, empty as empty_table, from_rows

from . import pii, readers

TABLES = ("conversations", "ugc", "edits", "judgments", "prompts", "rated")
ID_COLUMNS = {"conversations": "conversation_id", "ugc": "post_id", "edits": "edit_id"}
RECORDS = pa.schema([pa.field("record_id", pa.string(), nullable=False),
                     pa.field("source_file", pa.string(), nullable=False),
                     pa.field("line", pa.int64(), nullable=False)])
LINKS = pa.schema([("record_id", pa.string()), ("question_id", pa.string()), ("answer_id", pa.string())])
LINK_SEP = "\x1f"     # joins a link's question and answer ids into one key
ACCEPTED = "accepted"  # the `table` of accepted-answer links in a parent's source-id rows
RAW_CAP = 64 * 1024


@dataclass
class SourceBatch:
    tables: dict[str, pa.Table]   # conversations, ugc, edits, judgments, prompts, rated; conform()ed, empty when none
    quarantine: pa.Table          # schemas/quarantine.yaml
    records: pa.Table             # every record read: record_id, source_file, line
    inputs: list[dict]            # per file: path, label, sha256, bytes, records
    stats: dict                   # formats, quarantined, pii_scrubbed, normalized
    accepted_answers: pa.Table = field(default_factory=LINKS.empty_table)  # question -> accepted answer links

    @classmethod
    def empty(cls) -> "SourceBatch":
        tables = {name: empty_table(name) for name in TABLES}
        return cls(tables, empty_table("quarantine"), RECORDS.empty_table(), [], {})


def quarantine_row(record_id: str, source_file: str, line: int, kind: str, message: str, raw: bytes | None) -> dict:
    return {"record_id": record_id, "source_file": source_file, "line": line, "error_kind": kind,
            "message": message, "raw": None if raw is None else raw[:RAW_CAP]}


def merge(batches: list[SourceBatch], parent: pa.Table | None = None) -> SourceBatch:
    """Concatenate batches (their order is the run order), then quarantine duplicate ids and
    resolve accepted answers across all of them. Merging a merged batch changes nothing.

    `parent` (an incremental run: pipeline/source_ids.py, rows `table, id, record_id`): the ids
    and accepted-answer links of the parent version that concern these batches. A record with an
    id the parent read is a duplicate too (the parent's record came first)."""
    batches = [b for b in batches if b is not None]
    if not batches:
        return _finish(SourceBatch.empty(), parent)
    tables = {name: pa.concat_tables([b.tables[name] for b in batches]) for name in TABLES}
    out = SourceBatch(
        tables=tables,
        quarantine=pa.concat_tables([b.quarantine for b in batches]),
        records=pa.concat_tables([b.records.cast(RECORDS) for b in batches]),
        inputs=[entry for b in batches for entry in b.inputs],
        stats={key: _sum([b.stats.get(key, {}) for b in batches]) for key in ("pii_scrubbed", "normalized")},
        accepted_answers=pa.concat_tables([b.accepted_answers for b in batches]),
    )
    return _finish(out, parent)


def _finish(batch: SourceBatch, parent: pa.Table | None) -> SourceBatch:
    batch = _quarantine_duplicates(batch, parent)
    batch.tables = {name: conform(name, t.combine_chunks()) for name, t in batch.tables.items()}
    named = None if parent is None else parent.filter(pc.equal(parent["table"], ACCEPTED))["id"]
    batch.tables["ugc"] = _resolve_accepted(batch.tables["ugc"], batch.accepted_answers, named)
    batch.quarantine = conform("quarantine", batch.quarantine.combine_chunks())
    batch.records = batch.records.combine_chunks()
    batch.stats = {"formats": _formats(batch.tables), "quarantined": value_counts(batch.quarantine["error_kind"]),
                   "pii_scrubbed": batch.stats.get("pii_scrubbed", {}), "normalized": batch.stats.get("normalized", {})}
    return batch


def _sum(dicts: list[dict]) -> dict:
    total: Counter = Counter()
    for d in dicts:
        total.update(d)
    return dict(total)


def _formats(tables: dict[str, pa.Table]) -> dict:
    """Records normalized per format (a record may give several rows)."""
    counts: Counter = Counter()
    for t in tables.values():
        if t.num_rows:
            for row in t.group_by("format").aggregate([("record_id", "count_distinct")]).to_pylist():
                counts[row["format"]] += row["record_id_count_distinct"]
    return dict(counts)


def _first_record(ids: pa.ChunkedArray, record_ids: pa.ChunkedArray) -> pa.Array:
    """For each row, the record_id of the first row (in table order) with the same id."""
    order = pa.table({"id": ids, "i": np.arange(len(ids), dtype=np.int64)})
    first = order.group_by("id", use_threads=False).aggregate([("i", "min")])
    position = pc.index_in(ids, value_set=first["id"].combine_chunks())
    return pc.take(record_ids, pc.take(first["i_min"], position))


def _quarantine_duplicates(batch: SourceBatch, parent: pa.Table | None) -> SourceBatch:
    dup_messages: dict[str, str] = {}
    for name, column in ID_COLUMNS.items():
        t = batch.tables[name]
        if not t.num_rows:
            continue
        first = _first_record(t[column], t["record_id"])
        if parent is not None:  # an id the parent read: its record came first
            theirs = parent.filter(pc.equal(parent["table"], name))
            at = pc.index_in(t[column], value_set=theirs["id"])
            first = pc.if_else(pc.is_valid(at), theirs["record_id"].take(at), first)
        is_dup = pc.not_equal(t["record_id"], first)
        hits = pa.table({"rid": t["record_id"], "id": t[column], "first": first}).filter(is_dup)
        for rid, ident, first_rid in zip(*(hits[c].to_pylist() for c in ("rid", "id", "first"))):
            dup_messages.setdefault(rid, f"{column} {ident!r} already seen in record {first_rid} (first one kept)")
    if not dup_messages:
        return batch
    dup_ids = pa.array(list(dup_messages), pa.string())
    for name in TABLES:
        t = batch.tables[name]
        batch.tables[name] = t.filter(pc.invert(pc.is_in(t["record_id"], value_set=dup_ids)))
    links = batch.accepted_answers
    batch.accepted_answers = links.filter(pc.invert(pc.is_in(links["record_id"], value_set=dup_ids)))
    where = batch.records.filter(pc.is_in(batch.records["record_id"], value_set=dup_ids)).to_pylist()
    raws = _raw_lookup(where)
    rows = [quarantine_row(r["record_id"], r["source_file"], r["line"], "duplicate_id", dup_messages[r["record_id"]],
                           raws.get((r["source_file"], r["line"]))) for r in where]
    duplicates = from_rows("quarantine", rows)
    if batch.stats.get("pii_scrubbed"):  # non-empty only when the batches were read with scrub_pii on
        duplicates = pii.scrub_raw(duplicates, Counter())
    batch.quarantine = pa.concat_tables([batch.quarantine, duplicates])
    return batch


def _raw_lookup(where: list[dict]) -> dict[tuple[str, int], bytes]:
    """Re-read the raw bytes of the duplicate records from their files (duplicates are rare)."""
    by_file: dict[str, set[int]] = {}
    for r in where:
        by_file.setdefault(r["source_file"], set()).add(r["line"])
    found = {}
    for path, lines in by_file.items():
        for line, raw in readers.raw_at(Path(path), lines).items():
            found[(path, line)] = raw
    return found


def _resolve_accepted(ugc: pa.Table, links: pa.Table, named: pa.ChunkedArray | None = None) -> pa.Table:
    """accepted = the flag the record gave, or a question of the run (or the `named` links of the
    parent's questions, `question_id␟answer_id`) names this answer as accepted."""
    keys = pc.binary_join_element_wise(links["question_id"], links["answer_id"], LINK_SEP)
    if named is not None:
        keys = pa.concat_arrays([as_array(keys), as_array(named)])
    if not ugc.num_rows or not len(keys):
        return ugc
    mine = pc.binary_join_element_wise(ugc["parent_id"], ugc["post_id"], LINK_SEP)
    named = pc.and_(pc.equal(ugc["kind"], "answer"), pc.fill_null(pc.is_in(mine, value_set=keys), False))
    accepted = pc.or_(ugc["accepted"], named)
    return ugc.set_column(ugc.schema.get_field_index("accepted"), ugc.schema.field("accepted"), accepted)
