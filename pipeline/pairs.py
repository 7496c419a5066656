"""Pair construction: assistant message lists, content-hash ids, the tie rule, and merging the
same pair found twice. Output is a `Candidates` object that filters then narrow down."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.columns import messages_of
from pipeline.hashing import messages_text, normalize_ws, one_message_text, pair_ids_of, sha256_hex
from pipeline.schema import DECISION, conform, schema


@dataclass
class Candidates:
    """Every candidate pair (kept or not) with its lineage columns, plus the decision log:
    one (filter name, passed, reason) triple of columns per filter, null where the filter did
    not look at the row because an earlier one had dropped it."""
    table: pa.Table
    log: list[tuple[str, pa.Array, pa.Array]] = field(default_factory=list)
    annotation: pa.Array | None = None  # lineage `annotator` JSON per row (null: not annotated)

    @property
    def kept(self) -> np.ndarray:
        alive = np.ones(self.table.num_rows, dtype=bool)
        for _, passed, _ in self.log:
            alive &= pc.fill_null(passed, True).to_numpy(zero_copy_only=False)
        return alive

    def alive(self, columns: list[str] | None = None) -> tuple[pa.Table, np.ndarray]:
        """The rows no filter has dropped (only `columns`, if given) and their positions."""
        idx = np.flatnonzero(self.kept)
        table = self.table if columns is None else self.table.select(columns)
        return (table if len(idx) == table.num_rows else table.take(idx)), idx

    def subset(self, mask: np.ndarray) -> "Candidates":
        """The rows where `mask` holds, with their decisions so far."""
        keep = pa.array(mask)
        return Candidates(self.table.filter(keep), [(n, p.filter(keep), r.filter(keep)) for n, p, r in self.log],
                          None if self.annotation is None else self.annotation.filter(keep))

    def record(self, name: str, idx: np.ndarray, passed, reason) -> None:
        """Store a filter's verdicts for the rows `idx` (positions in self.table)."""
        n = self.table.num_rows
        full_passed = np.full(n, None, dtype=object)
        full_reason = np.full(n, None, dtype=object)
        full_passed[idx] = np.asarray(passed, dtype=object)
        full_reason[idx] = np.asarray(reason, dtype=object)
        self.log.append((name, pa.array(full_passed, pa.bool_()), pa.array(full_reason, pa.string())))


def merge_duplicates(table: pa.Table) -> pa.Table:
    """The same pair (same pair_id) from several records or signals is one pair whose
    input_ids are the union (in first-seen order); the first occurrence's scores and evidence are kept."""
    first = table.append_column("_i", pa.array(np.arange(table.num_rows))).group_by(
        "pair_id", use_threads=False).aggregate([("_i", "min"), ("_i", "count")])
    if first.num_rows == table.num_rows:
        return table
    out = table.take(pc.take(first["_i_min"], pc.sort_indices(first["_i_min"])))
    ids = table["input_ids"].combine_chunks()
    flat = pa.table({"pair_id": table["pair_id"].combine_chunks().take(pc.list_parent_indices(ids)),
                     "id": pc.list_flatten(ids), "pos": np.arange(len(pc.list_flatten(ids)))})
    con = duck.connect()
    try:
        con.register("flat", flat)
        union = con.sql("SELECT pair_id, list(id ORDER BY pos) AS ids FROM "
                        "(SELECT pair_id, id, min(pos) AS pos FROM flat GROUP BY pair_id, id) GROUP BY pair_id").to_arrow_table()
    finally:
        con.close()
    merged = union["ids"].take(pc.index_in(out["pair_id"], union["pair_id"]))
    return out.set_column(out.schema.get_field_index("input_ids"), "input_ids", merged.cast(pa.list_(pa.string())))


def build_pairs(raw: pa.Table) -> Candidates:
    """Turn signal output (schemas/raw_pairs.yaml) into candidate pairs. The tie rule is the
    first decision of every pair: chosen and rejected must be non-empty and differ after
    whitespace normalization."""
    raw = conform("raw_pairs", raw)
    # each text is normalized once: the ids hash these forms and the tie rule compares them
    c_norm, r_norm = normalize_ws(raw["chosen"]), normalize_ws(raw["rejected"])
    prompt_text = messages_text(raw["prompt"])
    sides = [one_message_text("assistant", norm) for norm in (c_norm, r_norm)]
    table = pa.table({
        "pair_id": pair_ids_of(prompt_text, *sides),
        "prompt_id": sha256_hex(prompt_text),
        "prompt": raw["prompt"], "chosen": messages_of("assistant", raw["chosen"]),
        "rejected": messages_of("assistant", raw["rejected"]),
        **{c: raw[c] for c in ("score_chosen", "score_rejected", "margin", "source", "signal",
                               "annotator", "weight", "input_ids", "signal_value", "evidence", "recipe",
                               "chosen_origin", "rejected_origin", "generator")},
        "_c_norm": c_norm, "_r_norm": r_norm,
    })
    table = merge_duplicates(table)
    c_norm, r_norm = table["_c_norm"], table["_r_norm"]
    table = table.drop_columns(["_c_norm", "_r_norm"])
    empty = pc.or_(pc.equal(pc.utf8_length(c_norm), 0), pc.equal(pc.utf8_length(r_norm), 0))
    same = pc.equal(c_norm, r_norm)
    passed = pc.invert(pc.or_(empty, same))
    reason = pc.if_else(empty, "chosen or rejected is empty",
                        pc.if_else(same, "chosen equals rejected after whitespace normalization",
                                   "chosen and rejected differ"))
    cands = Candidates(table)
    cands.record("tie_rule", np.arange(table.num_rows), passed.to_numpy(zero_copy_only=False),
                 reason.to_numpy(zero_copy_only=False))
    return cands


def decisions_column(cands: Candidates) -> tuple[pa.ListArray, pa.Array]:
    """Assemble the decision log into lineage's `decisions` list per row, plus `dropped_by`
    (the first filter that failed the row)."""
    n = cands.table.num_rows
    f = len(cands.log)
    names = [pa.array(np.full(n, name, dtype=object), pa.string()) for name, _, _ in cands.log]
    structs = pa.concat_arrays([pa.StructArray.from_arrays([nm, p, r], fields=list(DECISION))
                                for nm, (_, p, r) in zip(names, cands.log)])
    order = np.arange(n * f).reshape(f, n).T.ravel()
    evaluated = np.stack([pc.is_valid(p).to_numpy(zero_copy_only=False) for _, p, _ in cands.log], axis=1)
    values = structs.take(pa.array(order)).filter(pa.array(evaluated.ravel()))
    offsets = np.concatenate([[0], np.cumsum(evaluated.sum(axis=1))]).astype(np.int32)
    decisions = pa.ListArray.from_arrays(pa.array(offsets), values)

    dropped_by = np.full(n, None, dtype=object)
    for name, passed, _ in cands.log:
        failed = ~pc.fill_null(passed, True).to_numpy(zero_copy_only=False) & (dropped_by == None)  # noqa: E711
        dropped_by[failed] = name
    return decisions, pa.array(dropped_by, pa.string())


def finalize(cands: Candidates) -> tuple[pa.Table, pa.Table]:
    """(pairs, lineage) tables, validated against their contracts."""
    t = cands.table
    decisions, dropped_by = decisions_column(cands)
    kept = pa.array(cands.kept)
    nulls = pa.nulls(t.num_rows, pa.string())
    lineage = pa.table({
        "pair_id": t["pair_id"], "input_ids": t["input_ids"], "source": t["source"],
        "signal": t["signal"], "recipe": t["recipe"], "chosen_origin": t["chosen_origin"],
        "rejected_origin": t["rejected_origin"], "signal_value": t["signal_value"], "evidence": t["evidence"],
        "generator": t["generator"], "annotator": cands.annotation if cands.annotation is not None else nulls,
        "decisions": decisions, "kept": kept,
        "dropped_by": dropped_by,
    })
    pairs = t.filter(kept).select(schema("pairs").names)
    return conform("pairs", pairs), conform("lineage", lineage)
