"""Combine annotators' verdicts on candidate pairs (methods S15, S16; SCIR; Secrets-II).

Each annotator votes for the pair's chosen side (verdict a), against it (b), or abstains (a
tie, an order flip, or unscored); the implicit signal that made the pair votes for it when
`include_signal`. A pair passes the consistency filter when the share of non-abstaining votes
backing chosen is at least `min_agreement`, every reward-model ensemble's member vote share is at
least `min_ensemble_vote`, and (with `require_dual_order`) no pairwise judge flipped with the
order. The margin filter keeps pairs whose mean annotator margin, in z units over the run, is at
least `min_margin_z`. The soft label (mean P(chosen better) over annotators) and every vote go to
lineage for trainers that use soft labels (CREAM / rDPO style)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from pipeline.config_annotate import CombineConfig


def combine_verdicts(verdicts: dict[str, pa.Table], margins: dict[str, tuple[np.ndarray, np.ndarray]],
                     types: dict[str, str], cfg: CombineConfig) -> dict:
    """Per pair: consistency pass/reason, margin pass/reason, agreement, soft label, margin_z."""
    n = next(iter(verdicts.values())).num_rows if verdicts else 0
    names = list(verdicts)
    verdict = {k: np.array(v["verdict"].to_pylist(), dtype=object) for k, v in verdicts.items()}
    p_a = np.array([[np.nan if x is None else x for x in verdicts[k]["p_a"].to_pylist()] for k in names],
                   dtype=float).reshape(len(names), n)
    votes_for = sum((verdict[k] == "a").astype(int) for k in names) + (1 if cfg.include_signal else 0)
    votes_against = sum((verdict[k] == "b").astype(int) for k in names) if names else np.zeros(n, int)
    decided = votes_for + votes_against
    agreement = np.where(decided > 0, votes_for / np.maximum(decided, 1), np.nan)

    problems = [[] for _ in range(n)]
    for i in np.flatnonzero(np.nan_to_num(agreement, nan=1.0) < cfg.min_agreement):
        problems[i].append(f"agreement {agreement[i]:.2f} < {cfg.min_agreement} "
                           f"({votes_for[i]} for, {votes_against[i]} against)")
    for k in names:
        if types[k] == "rm_ensemble":
            for i in np.flatnonzero(np.nan_to_num(p_a[names.index(k)], nan=1.0) < cfg.min_ensemble_vote):
                problems[i].append(f"{k}: member vote {p_a[names.index(k)][i]:.2f} < {cfg.min_ensemble_vote}")
        if types[k] == "pairwise_judge" and cfg.require_dual_order:
            flips = [bool(json.loads(e).get("flip")) if e else False for e in verdicts[k]["evidence"].to_pylist()]
            for i in np.flatnonzero(flips):
                problems[i].append(f"{k}: verdict flips when the order is swapped")
    consistent = np.array([not p for p in problems], dtype=bool)
    reason = np.array(["; ".join(p) if p else f"agreement {agreement[i]:.2f}" if np.isfinite(agreement[i])
                       else "no annotator decided" for i, p in enumerate(problems)], dtype=object)

    z = np.array([margins[k][1] for k in names], dtype=float).reshape(len(names), n)
    with np.errstate(all="ignore"):
        margin_z = np.nanmean(z, axis=0) if names else np.full(n, np.nan)
        soft = np.nanmean(p_a, axis=0) if names else np.full(n, np.nan)
    if cfg.min_margin_z is None:
        margin_ok, margin_reason = None, None
    else:
        margin_ok = np.nan_to_num(margin_z, nan=-np.inf) >= cfg.min_margin_z
        margin_reason = np.array([f"annotator margin {m:.2f} z {'>=' if ok else '<'} {cfg.min_margin_z}"
                                  if np.isfinite(m) else "no annotator margin (all unscored)"
                                  for m, ok in zip(margin_z, margin_ok)], dtype=object)
    return {"consistent": consistent, "reason": reason, "agreement": agreement, "soft_label": soft,
            "margin_z": margin_z, "margin_ok": margin_ok, "margin_reason": margin_reason,
            "votes_for": votes_for, "votes_against": votes_against}
