"""`ugc_votes`: community-voted answers as preference pairs (Stack Exchange threads).

Threads are joined from the flat `ugc` table: an answer belongs to its question (thread_id, else
parent_id); a comment belongs to the post it is attached to (parent_id). For every question
with >= 2 answers of at least `min_answer_chars` characters:

* each answer's adjusted score = votes + comment_weight * (positive - negative comments on it),
  where comments are classified with the same SAT / DSAT lexicon as chat turns ("thanks, this
  worked" is positive; "this is wrong", "doesn't work" negative; no cue = not used);
* chosen = the accepted answer, rejected = the lowest-scored other answer, if the accepted
  answer's adjusted score is above it; otherwise (or with no accepted answer) chosen = the
  highest adjusted score, rejected = the lowest other one, and the evidence records why;
* kept when gap = adjusted(chosen) - adjusted(rejected) >= min_score_gap.

prompt = [user: title + "\\n\\n" + question], margin = signal_value = gap, scores = the adjusted
scores, weight = gap / (gap + weight_half_gap): monotone in the gap, 0 at 0, 0.5 at
`weight_half_gap` votes, -> 1 for large gaps. input_ids = question, both answers, and the
comments that changed their adjusted scores. All joins are `pc.index_in` + NumPy, not loops.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import UgcSignalConfig
from pipeline.schema import conform
from pipeline.signals.common import concat, id_lists, json_column, num_str, pairs_table, unpaired_table, user_prompt
from pipeline.signals.dissatisfaction import classify_turns
from pipeline.signals.result import SignalResult


def _index_in(values, universe: pa.Array) -> np.ndarray:
    """Row of each value in `universe` (-1 when absent or null)."""
    return pc.fill_null(pc.index_in(values, value_set=universe), -1).to_numpy(zero_copy_only=False)


def _list_of(groups: np.ndarray, n_groups: int, values: pa.Array) -> pa.ListArray:
    """values grouped into n_groups lists by `groups` (-1 = in no list), order kept."""
    sel = np.flatnonzero(groups >= 0)
    order = sel[np.argsort(groups[sel], kind="stable")]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(groups[sel], minlength=n_groups))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order)))


def question_text(title, text) -> pa.Array:
    """A question post as the request it makes: its title, a blank line, its body."""
    return pc.utf8_trim_whitespace(concat(pc.fill_null(title, ""), "\n\n", text))


def mine_ugc(table: pa.Table, cfg: UgcSignalConfig) -> SignalResult:
    table = conform("ugc", table)
    n = table.num_rows
    if n == 0:
        return SignalResult()
    kind = table["kind"].combine_chunks()
    post_id = table["post_id"].combine_chunks()
    rid = table["record_id"].combine_chunks()
    text = table["text"].combine_chunks()
    is_q = pc.equal(kind, "question").to_numpy(zero_copy_only=False)
    is_a = pc.equal(kind, "answer").to_numpy(zero_copy_only=False)
    is_c = pc.equal(kind, "comment").to_numpy(zero_copy_only=False)
    rows = np.arange(n)

    # answers -> their question; comments -> their post
    parent = _index_in(table["parent_id"], post_id)
    thread = _index_in(pc.coalesce(table["thread_id"], table["parent_id"]), post_id)
    a_question = np.where(is_a & (thread >= 0) & is_q[np.clip(thread, 0, None)], thread, -1)
    long_enough = pc.utf8_length(text).to_numpy(zero_copy_only=False) >= cfg.min_answer_chars
    eligible = is_a & (a_question >= 0) & long_enough

    # comments on answers: SAT = +1, DSAT = -1, anything else unused
    c_rows = np.flatnonzero(is_c)
    c_post = parent[c_rows]
    polarity = np.zeros(n, dtype=np.int64)
    if len(c_rows):
        labels = classify_turns(text.take(pa.array(c_rows)))
        lab = labels["label"].to_numpy(zero_copy_only=False)
        polarity[c_rows] = np.where(lab == "SAT", 1, np.where(lab == "DSAT", -1, 0))
    on_answer = np.zeros(n, dtype=bool)
    on_answer[c_rows] = (c_post >= 0) & is_a[np.clip(c_post, 0, None)]
    counted = on_answer & (polarity != 0)
    target = np.where(counted, parent, -1)
    pos = np.bincount(target[counted & (polarity > 0)], minlength=n)
    neg = np.bincount(target[counted & (polarity < 0)], minlength=n)
    score = table["score"].to_numpy()
    adjusted = score + cfg.comment_weight * (pos - neg)
    accepted = table["accepted"].to_numpy(zero_copy_only=False) & eligible

    # per question: answers sorted by adjusted score (ties: earlier record first)
    e = np.flatnonzero(eligible)
    order = e[np.lexsort((e, adjusted[e], a_question[e]))]
    grp = a_question[order]
    n_ans = np.bincount(grp, minlength=n)
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]]) if len(grp) else np.array([], dtype=np.int64)
    ends = np.r_[starts[1:], len(grp)] - 1 if len(grp) else starts
    gq = grp[starts]                                             # question row of each group
    two = n_ans[gq] >= 2
    starts, ends, gq = starts[two], ends[two], gq[two]
    lowest, highest = order[starts], order[ends]
    second = order[np.minimum(starts + 1, len(order) - 1)]
    acc_row = np.full(n, -1)
    acc_row[a_question[accepted]] = np.flatnonzero(accepted)
    acc = acc_row[gq]
    has_acc = acc >= 0
    acc_rejected = np.where(lowest == acc, second, lowest)       # lowest answer other than the accepted one
    use_acc = has_acc & (adjusted[np.clip(acc, 0, None)] > adjusted[acc_rejected])
    chosen = np.where(use_acc, acc, highest)
    rejected = np.where(use_acc, acc_rejected, lowest)
    gap = adjusted[chosen] - adjusted[rejected]
    ok = gap >= cfg.min_score_gap
    how = np.where(use_acc, "accepted answer",
                   np.where(has_acc, "highest adjusted score (the accepted answer is not above the rejected one)",
                            "highest adjusted score (no accepted answer)"))

    k = np.flatnonzero(ok)
    qk, ck, rk = gq[k], chosen[k], rejected[k]
    # the comments that counted on a chosen or rejected answer of a kept pair
    pair_of_answer = np.full(n, -1)
    pair_of_answer[ck], pair_of_answer[rk] = np.arange(len(k)), np.arange(len(k))
    c_pair = np.where(counted, pair_of_answer[np.clip(parent, 0, None)], -1)
    evidence_comments = _list_of(c_pair, len(k), post_id)
    prompt_text = question_text(table["title"].combine_chunks().take(pa.array(qk)), text.take(pa.array(qk)))
    take = lambda a, idx: a.take(pa.array(idx))  # noqa: E731
    gk = gap[k].astype(float)
    pairs = pairs_table(
        len(k), prompt=user_prompt(prompt_text), chosen=take(text, ck), rejected=take(text, rk),
        score_chosen=adjusted[ck], score_rejected=adjusted[rk], margin=gk, source="ugc", signal="ugc_votes",
        annotator="implicit:community_votes", weight=gk / (gk + cfg.weight_half_gap),
        input_ids=id_lists(take(rid, qk), take(rid, ck), take(rid, rk), _list_of(c_pair, len(k), rid)),
        signal_value=gk, chosen_origin="human", rejected_origin="human",
        evidence=json_column(
            question=take(post_id, qk), chosen=take(post_id, ck), rejected=take(post_id, rk),
            chosen_by=pa.array(how[k]), chosen_votes=pa.array(score[ck]), rejected_votes=pa.array(score[rk]),
            chosen_comments_pos=pa.array(pos[ck]), chosen_comments_neg=pa.array(neg[ck]),
            rejected_comments_pos=pa.array(pos[rk]), rejected_comments_neg=pa.array(neg[rk]),
            chosen_accepted=pa.array(accepted[ck]), rejected_accepted=pa.array(accepted[rk]),
            comment_weight=pa.array(np.full(len(k), cfg.comment_weight)), comments=evidence_comments,
            answers=pa.array(n_ans[qk])))

    # reasons, most specific first (unpaired_table keeps the first per record)
    gap_small = np.flatnonzero(~ok)
    small_reason = concat("ugc: adjusted score gap too small (", num_str(gap[gap_small]), f" < {cfg.min_score_gap})")
    reasons = [
        (np.r_[gq[gap_small], chosen[gap_small], rejected[gap_small]],
         pa.concat_arrays([small_reason] * 3) if len(gap_small) else pa.array([], pa.string())),
        (rows[is_q], concat("ugc: question has fewer than 2 answers (", num_str(n_ans[is_q]),
                            f" of >= {cfg.min_answer_chars} chars)")),
        (rows[is_a & (a_question < 0)], "ugc: answer's question is not in the input"),
        (rows[is_a & (a_question >= 0) & ~long_enough], f"ugc: answer shorter than {cfg.min_answer_chars} chars"),
        (rows[eligible & (n_ans[np.clip(a_question, 0, None)] >= 2)], "ugc: answer neither chosen nor rejected"),
        (rows[eligible], "ugc: answer to a question with fewer than 2 answers"),
        (rows[is_c & (parent < 0)], "ugc: comment's post is not in the input"),
        (rows[is_c & (parent >= 0) & ~on_answer], "ugc: comment on a question (only answer comments adjust scores)"),
        (rows[is_c & on_answer & (polarity == 0)], "ugc: comment has no SAT/DSAT cue"),
        (rows[is_c], "ugc: comment on an answer that is in no pair"),
    ]
    ids = pa.concat_arrays([rid.take(pa.array(r, pa.int64())) for r, _ in reasons])
    why = pa.concat_arrays([r_ if isinstance(r_, pa.Array) else pa.array([r_] * len(r), pa.string())
                            for r, r_ in reasons])
    return SignalResult(pairs=pairs, unpaired=unpaired_table(ids, why, used=pairs["input_ids"]))
