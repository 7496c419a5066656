"""`human_pairwise`: aggregate human pairwise judgments (PandaLM, expert rankings) into pairs.

Judgments are grouped by content, not by record: the key is (prompt, {response_a, response_b})
after whitespace normalization, order-insensitive - a row judging (b, a) is flipped (label 1 <->
2) before counting, so the same unordered pair judged by several annotators, records or files
is one vote count. Per group, with n = number of judgments (labels 0/1/2):

* the winner is the side with the most votes if it beats both the other side and the "tie"
  votes; otherwise the group is dropped (equal votes for both sides, or the tie label is at least
  as frequent as the leading side);
* agreement = votes for the winner / n; kept only if agreement >= min_agreement;
* score_chosen = winner votes / n, score_rejected = loser votes / n, margin = their difference,
  weight = signal_value = agreement; input_ids = every record that judged the pair.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import PairwiseSignalConfig
from pipeline.hashing import messages_text, normalize_ws
from pipeline.schema import conform
from pipeline.signals.common import concat, id_lists, json_column, num_str, pairs_table, unpaired_table
from pipeline.signals.result import SignalResult


def vote_groups(table: pa.Table) -> dict:
    """Group judgments by content (order-insensitive) and count votes per group: x/y are the two
    responses in a canonical order, vx/vy/vt the votes for x, for y and for a tie; `first` is
    each group's first row, `rows` its row list; x_text/y_text the first row's texts."""
    n = table.num_rows
    a, b = table["response_a"].combine_chunks(), table["response_b"].combine_chunks()
    na, nb = normalize_ws(a), normalize_ws(b)
    swap = pc.greater(na, nb)
    label = table["label"].to_numpy()
    flipped = np.where(swap.to_numpy(zero_copy_only=False) & (label > 0), 3 - label, label)
    keyed = pa.table({
        "p": messages_text(table["prompt"]), "x": pc.if_else(swap, nb, na), "y": pc.if_else(swap, na, nb),
        "row": np.arange(n), "vx": (flipped == 1).astype(np.int64), "vy": (flipped == 2).astype(np.int64),
        "vt": (flipped == 0).astype(np.int64),
    })
    g = keyed.group_by(["p", "x", "y"], use_threads=False).aggregate(
        [("row", "min"), ("row", "list"), ("vx", "sum"), ("vy", "sum"), ("vt", "sum")]).sort_by("row_min")
    first = g["row_min"].to_numpy()
    first_swap = pa.array(swap.to_numpy(zero_copy_only=False)[first])
    at = pa.array(first)
    return {"first": first, "rows": g["row_list"].combine_chunks(),
            "same": pc.equal(g["x"], g["y"]).to_numpy(zero_copy_only=False),
            "vx": g["vx_sum"].to_numpy(), "vy": g["vy_sum"].to_numpy(), "vt": g["vt_sum"].to_numpy(),
            "x_text": pc.if_else(first_swap, b.take(at), a.take(at)),
            "y_text": pc.if_else(first_swap, a.take(at), b.take(at))}


def mine_pairwise(table: pa.Table, cfg: PairwiseSignalConfig) -> SignalResult:
    table = conform("judgments", table)
    if table.num_rows == 0:
        return SignalResult()
    v = vote_groups(table)
    first, same, vx, vy, vt, x_text, y_text, rows = (v[k] for k in ("first", "same", "vx", "vy", "vt", "x_text",
                                                                    "y_text", "rows"))
    total = vx + vy + vt
    x_wins = (vx > vy) & (vx > vt)
    y_wins = (vy > vx) & (vy > vt)
    win, lose = np.where(y_wins, vy, vx), np.where(y_wins, vx, vy)
    agreement = np.where(total > 0, win / np.maximum(total, 1), 0.0)
    ok = ~same & (x_wins | y_wins) & (agreement >= cfg.min_agreement)

    rid = table["record_id"].combine_chunks()
    row_ids = pa.ListArray.from_arrays(rows.offsets, rid.take(rows.values))
    row_annotators = pa.ListArray.from_arrays(rows.offsets, pc.fill_null(table["annotator"], "").combine_chunks()
                                              .take(rows.values))

    k = np.flatnonzero(ok)
    kk = pa.array(k)
    y_k = pa.array(y_wins[k])
    tot = total[k].astype(float)
    pairs = pairs_table(
        len(k), prompt=table["prompt"].combine_chunks().take(pa.array(first[k])),
        chosen=pc.if_else(y_k, y_text.take(kk), x_text.take(kk)),
        rejected=pc.if_else(y_k, x_text.take(kk), y_text.take(kk)),
        score_chosen=win[k] / tot, score_rejected=lose[k] / tot, margin=(win[k] - lose[k]) / tot,
        source="judgments", signal="human_pairwise", annotator="human:majority", weight=agreement[k],
        input_ids=id_lists(row_ids.take(kk)), signal_value=agreement[k],
        evidence=json_column(votes_chosen=pa.array(win[k]), votes_rejected=pa.array(lose[k]),
                             votes_tie=pa.array(vt[k]), judgments=pa.array(total[k]),
                             agreement=pa.array(agreement[k]), annotators=row_annotators.take(kk),
                             format=table["format"].combine_chunks().take(pa.array(first[k]))))

    votes = concat(" (", num_str(np.maximum(vx, vy)), " vs ", num_str(np.minimum(vx, vy)), " votes, ", num_str(vt),
                   " ties of ", num_str(total), ")")
    reason = pc.if_else(
        pa.array(same), "pairwise: both responses are the same text",
        pc.if_else(pa.array(vx == vy), concat("pairwise: tie", votes),
                   pc.if_else(pa.array(~(x_wins | y_wins)), concat("pairwise: majority judged a tie", votes),
                              concat("pairwise: agreement ", num_str(agreement), f" < {cfg.min_agreement}", votes))))
    drop = np.flatnonzero(~ok)
    per_row = reason.take(pa.array(np.repeat(drop, np.diff(rows.offsets.to_numpy())[drop])))
    dropped_rows = pc.list_flatten(rows.take(pa.array(drop)))
    return SignalResult(pairs=pairs, unpaired=unpaired_table(rid.take(dropped_rows), per_row,
                                                             used=pairs["input_ids"]))
