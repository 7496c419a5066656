"""`edit`: a human's edit of a model text is a preference for the edited text (PRELUDE / CIPHER,
methods.md S5): chosen = edited, rejected = original, prompt = the request the original answered.

The edit size is the normalized token-level Levenshtein distance

    d = lev(tokens(original), tokens(edited)) / max(len(tokens(original)), len(tokens(edited)))

with tokens = whitespace-separated words (`rapidfuzz.process.cpdist` with
`Levenshtein.normalized_distance` and `str.split` as processor: one vectorized C call over all
rows). A pair is kept when min_distance <= d <= max_distance: below, the edit is a typo fix that
says nothing about preference; above, it is a rewrite (the "original" was replaced, not edited).
margin = signal_value = d; weight = 1 (the editor's choice is explicit; d is the strength).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from pipeline.config import EditSignalConfig
from pipeline.schema import conform
from pipeline.signals.common import concat, id_lists, json_column, num_str, pairs_table, unpaired_table
from pipeline.signals.result import SignalResult


def token_distance(original, edited) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, tokens in original, tokens in edited) per row."""
    orig, edit = original.to_pylist(), edited.to_pylist()
    d = process.cpdist(orig, edit, scorer=Levenshtein.normalized_distance, processor=str.split, workers=1)
    n_orig = pc.list_value_length(pc.utf8_split_whitespace(original)).to_numpy(zero_copy_only=False)
    n_edit = pc.list_value_length(pc.utf8_split_whitespace(edited)).to_numpy(zero_copy_only=False)
    return np.asarray(d, dtype=np.float64), n_orig, n_edit


def mine_edits(table: pa.Table, cfg: EditSignalConfig) -> SignalResult:
    table = conform("edits", table)
    if table.num_rows == 0:
        return SignalResult()
    original, edited = table["original"].combine_chunks(), table["edited"].combine_chunks()
    d, n_orig, n_edit = token_distance(original, edited)
    d = np.round(d, 4)
    unchanged = d == 0.0
    typo = ~unchanged & (d < cfg.min_distance)
    rewrite = d > cfg.max_distance
    keep = ~(unchanged | typo | rewrite)

    k = np.flatnonzero(keep)
    kt = table.take(pa.array(k))
    pairs = pairs_table(
        len(k), prompt=kt["prompt"], chosen=kt["edited"], rejected=kt["original"],
        score_chosen=1.0, score_rejected=0.0, margin=d[k], source="edits", signal="edit",
        annotator=concat("human:", pc.fill_null(kt["editor"], "editor")), weight=1.0,
        input_ids=id_lists(kt["record_id"]), signal_value=d[k], chosen_origin="human_edit",
        evidence=json_column(edit_id=kt["edit_id"], token_distance=pa.array(d[k]),
                             original_tokens=pa.array(n_orig[k]), edited_tokens=pa.array(n_edit[k]),
                             editor=kt["editor"], format=kt["format"]))

    ds = num_str(d, 3)
    reason = pc.if_else(
        pa.array(unchanged), "edits: no change (token-identical)",
        pc.if_else(pa.array(typo), concat("edits: typo-level edit (d=", ds, f" < {cfg.min_distance})"),
                   concat("edits: rewrite (d=", ds, f" > {cfg.max_distance})")))
    drop = pa.array(~keep)
    unpaired = unpaired_table(table["record_id"].filter(drop), reason.filter(drop), used=pairs["input_ids"])
    return SignalResult(pairs=pairs, unpaired=unpaired)
