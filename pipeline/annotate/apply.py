"""Annotate the candidate pairs that survived the cheap filters and record the annotator
filters (consistency, margin) in their decision log. Each annotator compares (chosen, rejected)
as (a, b); its verdict, margins, raw evidence and identity go to the pair's lineage."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from pipeline.annotate.registry import Runners, build_annotators
from pipeline.columns import first_content
from pipeline.config_annotate import AnnotateConfig
from pipeline.filters.consistency import combine_verdicts
from pipeline.pairs import Candidates


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def checklists(evidence: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The per-pair checklist a recipe wrote into the evidence (WildFeedback), null elsewhere:
    the judges grade against it (user-guided evaluation)."""
    return pa.array([(json.loads(e) or {}).get("checklist") if e else None for e in evidence.to_pylist()],
                    pa.list_(pa.string()))


def run_annotators(annotators: list, pairs: pa.Table) -> tuple[dict, dict]:
    """Every annotator's verdicts on (chosen, rejected) and its margins."""
    items = pa.table({"prompt": pairs["prompt"], "response_a": first_content(pairs["chosen"]),
                      "response_b": first_content(pairs["rejected"]), "checklist": checklists(pairs["evidence"])})
    verdicts = {a.name: a.compare(items) for a in annotators}
    return verdicts, {a.name: a.margins(verdicts[a.name]) for a in annotators}


def annotator_stats(annotators: list, verdicts: dict) -> dict:
    out = {}
    for a in annotators:
        v = verdicts[a.name]
        unscored = int(v["p_a"].null_count)
        out[a.name] = {**a.describe(), "pairs": v.num_rows, "unscored": unscored,
                       "agrees_with_signal": int(sum(x == "a" for x in v["verdict"].to_pylist())),
                       "seconds": round(a.cost.seconds, 3), **(a.stats() if hasattr(a, "stats") else {})}
    return out


def annotate_candidates(cands: Candidates, cfg: AnnotateConfig, runners: Runners) -> dict:
    alive, idx = cands.alive()
    annotators = build_annotators(cfg.annotators, runners)
    verdicts, margins = run_annotators(annotators, alive) if len(idx) else ({}, {})
    if not len(idx):
        return {"annotators": {}}
    described = {a.name: a.describe() for a in annotators}
    combined = combine_verdicts(verdicts, margins, {k: d["type"] for k, d in described.items()}, cfg.combine)
    cands.record("annotator_consistency", idx, combined["consistent"], combined["reason"])
    if combined["margin_ok"] is not None:
        cands.record("annotator_margin", idx, combined["margin_ok"], combined["margin_reason"])

    lineage = np.full(cands.table.num_rows, None, dtype=object)
    cols = {k: (v["p_a"].to_pylist(), v["verdict"].to_pylist(), v["evidence"].to_pylist(), v["error"].to_pylist())
            for k, v in verdicts.items()}
    for row, i in enumerate(idx):
        per = {}
        for k, (p, verdict, ev, err) in cols.items():
            per[k] = {**described[k], "p_a": p[row], "verdict": verdict[row], "margin": _num(margins[k][0][row]),
                      "margin_z": _num(margins[k][1][row]), "error": err[row],
                      "evidence": json.loads(ev[row]) if ev[row] else None}
        lineage[i] = json.dumps({"annotators": per, "agreement": _num(combined["agreement"][row]),
                                 "soft_label": _num(combined["soft_label"][row]),
                                 "margin_z": _num(combined["margin_z"][row]),
                                 "votes": {"for": int(combined["votes_for"][row]),
                                           "against": int(combined["votes_against"][row])}},
                                ensure_ascii=False)
    cands.annotation = pa.array(lineage, pa.string())
    return {"annotators": annotator_stats(annotators, verdicts),
            "consistent": int(combined["consistent"].sum()), "annotated_pairs": int(len(idx))}
