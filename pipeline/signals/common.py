"""Small Arrow helpers the miners share: JSON evidence columns, message-list prompts, and the
`raw_pairs` / `unpaired` tables every miner returns."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.columns import as_array, messages_of
from pipeline.schema import conform, empty


def strings(value, n: int) -> pa.Array:
    """A constant string column of length n (or the given column, cast to string)."""
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return pc.cast(value, pa.string())
    return pa.array(np.full(n, value, dtype=object), pa.string())


def num_str(values, digits: int = 2) -> pa.Array:
    """Numbers rendered as short strings (`0.83`, `3`) for reasons and evidence."""
    arr = np.round(np.asarray(values, dtype=float), digits)
    out = pc.cast(pa.array(arr), pa.string())
    return pc.replace_substring_regex(out, r"\.0$", "")


def concat(*parts) -> pa.Array:
    """Element-wise string concatenation of columns and literals (literals are broadcast)."""
    n = next(len(p) for p in parts if isinstance(p, (pa.Array, pa.ChunkedArray, np.ndarray)))
    cols = [strings(p, n) if not isinstance(p, np.ndarray) else pa.array(p, pa.string()) for p in parts]
    return pc.binary_join_element_wise(*cols, "")


def json_column(**columns) -> pa.Array:
    """One JSON object per row with the given columns as keys (DuckDB's to_json: vectorized,
    correct escaping). Used for the `evidence` column."""
    n = len(next(iter(columns.values())))
    if n == 0:
        return pa.array([], pa.string())
    arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else
              (c if isinstance(c, pa.Array) else pa.array(c)) for c in columns.values()]
    table = pa.table({"i": np.arange(n), "e": pa.StructArray.from_arrays(arrays, names=list(columns))})
    con = duck.connect()
    try:
        con.register("evidence", table)
        out = con.sql("SELECT to_json(e)::VARCHAR AS j FROM evidence ORDER BY i").to_arrow_table()
    finally:
        con.close()
    return out["j"].combine_chunks()


def user_prompt(texts) -> pa.ListArray:
    """A one-message prompt [user: text] per row."""
    return messages_of("user", texts)


def prefix_messages(messages: pa.ListArray, rows: np.ndarray, stop: np.ndarray) -> pa.ListArray:
    """For each k: messages[rows[k]][0 : stop[k] + 1] (the conversation up to and including the
    message at index stop[k]), built with one `take` over the flattened messages."""
    offsets = messages.offsets.to_numpy()
    starts = offsets[rows]
    lengths = (np.asarray(stop) + 1).astype(np.int64)
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    idx = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return pa.ListArray.from_arrays(pa.array(new_offsets), messages.values.take(pa.array(idx)))


def id_lists(*columns) -> pa.ListArray:
    """Per row, the distinct non-null ids from the given string columns / list columns."""
    n = len(columns[0])
    parts = []
    for col in columns:
        col = as_array(col)
        if pa.types.is_list(col.type):
            parts.append((pc.list_parent_indices(col).to_numpy(), pc.list_flatten(col)))
        else:
            parts.append((np.arange(n), col))
    parent = np.concatenate([p for p, _ in parts])
    values = pa.concat_arrays([pc.cast(v, pa.string()) for _, v in parts])
    t = pa.table({"row": parent, "id": values, "order": np.arange(len(parent))}).filter(
        pc.is_valid(values))
    t = t.group_by(["row", "id"], use_threads=False).aggregate([("order", "min")])
    t = t.sort_by([("row", "ascending"), ("order_min", "ascending")])
    counts = np.bincount(t["row"].to_numpy(), minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), t["id"].combine_chunks())


def pairs_table(n: int, *, prompt, chosen, rejected, score_chosen, score_rejected, margin, source,
                signal, annotator, weight, input_ids, signal_value, evidence, recipe="implicit",
                chosen_origin="log", rejected_origin="log", generator=None) -> pa.Table:
    """Assemble and validate a raw_pairs table (scalars are broadcast). Origins say who wrote
    each side (schemas/raw_pairs.yaml); `generator` holds the model and sampling of model-written sides."""
    if n == 0:
        return empty("raw_pairs")
    f64 = lambda v: pa.array(np.broadcast_to(np.asarray(v, dtype=float), (n,)))  # noqa: E731
    t = pa.table({
        "prompt": prompt, "chosen": strings(chosen, n), "rejected": strings(rejected, n),
        "score_chosen": f64(score_chosen), "score_rejected": f64(score_rejected), "margin": f64(margin),
        "source": strings(source, n), "signal": strings(signal, n), "annotator": strings(annotator, n),
        "weight": f64(weight), "input_ids": input_ids, "signal_value": f64(signal_value),
        "evidence": strings(evidence, n), "recipe": strings(recipe, n),
        "chosen_origin": strings(chosen_origin, n), "rejected_origin": strings(rejected_origin, n),
        "generator": pa.nulls(n, pa.string()) if generator is None else strings(generator, n),
    })
    return conform("raw_pairs", t)


def unpaired_table(record_ids, reasons, used=None) -> pa.Table:
    """(record_id, reason) rows, one per distinct record id (first reason wins), leaving out the
    records in `used` (the pairs' input_ids: a record that made some pair is not unpaired)."""
    record_ids = pc.cast(record_ids, pa.string())
    n = len(record_ids)
    if n == 0:
        return empty("unpaired")
    t = pa.table({"record_id": record_ids, "reason": strings(reasons, n), "_i": np.arange(n)})
    if used is not None and len(used):
        t = t.filter(pa.array(not_in(t["record_id"], used)))
    first = t.group_by("record_id", use_threads=False).aggregate([("_i", "min")])
    t = t.filter(pc.is_in(t["_i"], value_set=first["_i_min"].combine_chunks())).sort_by("_i")
    return conform("unpaired", t.select(["record_id", "reason"]))


def not_in(values, used) -> np.ndarray:
    """Boolean mask: values[i] is not among `used` (an array or list column of ids)."""
    used = as_array(used)
    if isinstance(used, pa.Array) and pa.types.is_list(used.type):
        used = pc.list_flatten(used)
    return pc.invert(pc.is_in(values, value_set=pa.array(used, pa.string()))).to_numpy(zero_copy_only=False)
