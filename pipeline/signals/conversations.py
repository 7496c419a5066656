"""`dsat_sat`: natural DSAT -> SAT preference pairs from conversation logs (the DRIFT seed set).

Every user turn that follows an assistant turn is classified (dissatisfaction.py). Then, per
conversation, a *chain* is: a request u_t answered by a_t; the next user turn is DSAT
(correction / complaint / rephrase); the user may stay dissatisfied for a few more turns; the
first non-DSAT turn after the run is SAT. With d_1..d_L the DSAT turns (L <= max_chain: the
number of DSAT turns allowed between the rejected and the accepted answer) and a_k the answer
the SAT turn reacts to, we emit one pair per DSAT'd answer:

    prompt   = messages[0 .. u_t]            (system and earlier turns kept; no complaint)
    rejected = the answer d_i reacted to     (a_t, then each intermediate answer)
    chosen   = a_k
    score_rejected = -confidence(d_i), score_chosen = +confidence(SAT), margin = their sum,
    weight = min of the two confidences, signal_value = margin

A NEUTRAL turn (continue, follow-up, new topic) ends a run without a pair: the user moved on
rather than accepted. Runs are found with NumPy over the flat turn arrays, not per conversation.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConversationSignalConfig
from pipeline.hashing import normalize_ws
from pipeline.schema import conform, empty
from pipeline.signals.common import (concat, id_lists, json_column, num_str, pairs_table, prefix_messages,
                                     strings, unpaired_table)
from pipeline.signals.dissatisfaction import classify_turns, explode_turns
from pipeline.signals.result import SignalResult

EVIDENCE_CHARS = 300  # turn texts quoted in the evidence are cut to this length


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx] with null where idx < 0."""
    return values.take(pa.array(np.where(idx < 0, 0, idx), mask=idx < 0))


def label_turns(table: pa.Table, cfg: ConversationSignalConfig) -> tuple[pa.Table, np.ndarray, pa.Table]:
    """(explode_turns(table), the flat indices of the classified user turns, their labels)."""
    turns = explode_turns(table)
    content = turns["content"].combine_chunks()
    cl = np.flatnonzero(turns["classified"].to_numpy(zero_copy_only=False))
    prev_answer, prev_request = turns["prev_answer"].to_numpy(), turns["prev_request"].to_numpy()
    labels = classify_turns(content.take(pa.array(cl)), _take(content, prev_request[cl]),
                            _take(content, prev_answer[cl]), cfg)
    return turns, cl, labels


def mine_conversations(table: pa.Table, cfg: ConversationSignalConfig) -> SignalResult:
    table = conform("conversations", table)
    if table.num_rows == 0:
        return SignalResult()
    turns, cl, labels = label_turns(table, cfg)
    content = turns["content"].combine_chunks()
    conv = turns["conv"].to_numpy()
    tix = turns["turn_index"].to_numpy()
    prev_answer = turns["prev_answer"].to_numpy()
    prev_request = turns["prev_request"].to_numpy()
    record_ids = table["record_id"].combine_chunks()
    signals = conform("signals", pa.table({
        "record_id": record_ids.take(pa.array(conv[cl])),
        "conversation_id": table["conversation_id"].combine_chunks().take(pa.array(conv[cl])),
        "turn_index": tix[cl], **{c: labels[c] for c in ("label", "category", "confidence", "evidence")},
    }))

    # per-message label arrays (None for messages that were not classified)
    n = len(content)
    label = np.full(n, None, dtype=object)
    label[cl] = labels["label"].to_numpy(zero_copy_only=False)
    conf = np.zeros(n)
    conf[cl] = labels["confidence"].to_numpy()

    # the user turns in order; a run is a maximal stretch of consecutive DSAT user turns
    users = np.flatnonzero(turns["is_user"].to_numpy(zero_copy_only=False))
    u_conv, u_label = conv[users], label[users]
    same_next = np.zeros(len(users), dtype=bool)
    same_next[:-1] = u_conv[1:] == u_conv[:-1]
    dsat = u_label == "DSAT"
    dsat_next = np.zeros(len(users), dtype=bool)
    dsat_next[:-1] = dsat[1:]
    dsat_prev = np.zeros(len(users), dtype=bool)
    dsat_prev[1:] = dsat[:-1] & same_next[:-1]
    firsts = np.flatnonzero(dsat & ~dsat_prev)
    lasts = np.flatnonzero(dsat & ~(dsat_next & same_next))
    length = lasts - firsts + 1
    nxt = np.minimum(lasts + 1, len(users) - 1)
    then_sat = same_next[lasts] & (u_label[nxt] == "SAT")
    request = prev_request[users[firsts]]
    too_long = then_sat & (length > cfg.max_chain)
    no_request = then_sat & ~too_long & (request < 0)
    ok = then_sat & ~too_long & ~no_request

    # one pair per DSAT turn of every ok run
    r = np.flatnonzero(ok)
    reps = length[r]
    run = np.repeat(r, reps)
    step = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    d_turn = users[firsts[run] + step]            # the DSAT user turn (flat index)
    s_turn = users[nxt[run]]                      # the SAT user turn
    rej, cho = prev_answer[d_turn], prev_answer[s_turn]
    req = request[run]
    chosen, rejected = content.take(pa.array(cho)), content.take(pa.array(rej))
    differ = pc.not_equal(normalize_ws(chosen), normalize_ws(rejected)).to_numpy(zero_copy_only=False)
    identical_runs = np.setdiff1d(run[~differ], run[differ])
    keep = np.flatnonzero(differ)
    d_turn, s_turn, rej, cho, req, run = (a[keep] for a in (d_turn, s_turn, rej, cho, req, run))
    chosen, rejected = chosen.take(pa.array(keep)), rejected.take(pa.array(keep))

    pairs = empty("raw_pairs")
    if len(keep):
        d_conf, s_conf = conf[d_turn], conf[s_turn]
        evidence_of = lambda idx: pc.fill_null(_take(labels["evidence"], np.searchsorted(cl, idx)), "")  # noqa: E731
        category_of = lambda idx: _take(labels["category"], np.searchsorted(cl, idx))  # noqa: E731
        quote = lambda idx: pc.utf8_slice_codeunits(content.take(pa.array(idx)), 0, EVIDENCE_CHARS)  # noqa: E731
        evidence = json_column(
            request_turn=pa.array(tix[req]), rejected_turn=pa.array(tix[rej]), chosen_turn=pa.array(tix[cho]),
            dsat_turn=pa.array(tix[d_turn]), dsat_category=category_of(d_turn), dsat_confidence=pa.array(d_conf),
            dsat_rule=evidence_of(d_turn), dsat_text=quote(d_turn),
            sat_turn=pa.array(tix[s_turn]), sat_category=category_of(s_turn), sat_confidence=pa.array(s_conf),
            sat_rule=evidence_of(s_turn), sat_text=quote(s_turn), chain_length=pa.array(length[run]))
        pairs = pairs_table(
            len(keep), prompt=prefix_messages(table["messages"].combine_chunks(), conv[req], tix[req]),
            chosen=chosen, rejected=rejected, score_chosen=s_conf, score_rejected=-d_conf,
            margin=s_conf + d_conf, source="conversations", signal="dsat_sat",
            annotator="implicit:sat_dsat_rules", weight=np.minimum(s_conf, d_conf),
            input_ids=id_lists(record_ids.take(pa.array(conv[req]))), signal_value=s_conf + d_conf,
            evidence=evidence)

    runs = {"firsts": firsts, "length": length, "too_long": too_long, "no_request": no_request,
            "identical": np.isin(np.arange(len(firsts)), identical_runs)}
    unpaired = _unpaired(table, conv[cl], labels["label"].to_numpy(zero_copy_only=False), conv[users], runs,
                         pairs["input_ids"], cfg)
    return SignalResult(pairs=pairs, unpaired=unpaired, signals=signals)


def _unpaired(table, cl_conv, cl_label, u_conv, runs, used, cfg) -> pa.Table:
    """A reason for every conversation that gave no pair, the most specific failure first:
    a DSAT→SAT run that was too long / had no request / accepted the same text, else the counts."""
    record_ids = table["record_id"].combine_chunks()
    n_conv = table.num_rows
    n_cl = np.bincount(cl_conv, minlength=n_conv)
    n_dsat = np.bincount(cl_conv[cl_label == "DSAT"], minlength=n_conv)
    n_sat = np.bincount(cl_conv[cl_label == "SAT"], minlength=n_conv)
    run_conv = u_conv[runs["firsts"]]
    too_long = runs["too_long"]
    ids = [record_ids.take(pa.array(run_conv[m])) for m in (too_long, runs["no_request"], runs["identical"])]
    reasons = [
        concat("conversations: DSAT→SAT chain of ", num_str(runs["length"][too_long]),
               f" DSAT turns > max_chain {cfg.max_chain}"),
        strings("conversations: DSAT→SAT sequence, but the DSAT'd answer has no user request before it", len(ids[1])),
        strings("conversations: DSAT→SAT sequence, but the accepted answer equals the rejected one", len(ids[2])),
        pc.if_else(pa.array(n_cl == 0), "conversations: no user turn follows an assistant turn",
                   concat("conversations: no DSAT→SAT sequence (", num_str(n_dsat), " DSAT, ", num_str(n_sat),
                          " SAT turns)")),
    ]
    ids.append(record_ids)
    return unpaired_table(pa.concat_arrays(ids), pa.concat_arrays(reasons), used=used)
