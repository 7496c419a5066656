"""DRIFT (Dissatisfaction-Refined Iterative preFerence Training; methods 1.2, S3). For every
user turn the dissatisfaction classifier labels DSAT:

    rejected = y_dsat, the real answer that drew the dissatisfaction (origin `log`)
    chosen   = what the current policy pi_t writes when shown c + y_dsat + the user's feedback
               and an instruction to improve the answer (T 0.7, top-p 0.9, <= 512 tokens)
    prompt   = c, the conversation up to the request, *without* the feedback

Iteration 0's natural DSAT->SAT pairs are the `dsat_sat` signal; a run names pi_t with
`policy.iteration`, which every chosen side's lineage records, and a new policy regenerates
(its revision is in the request key: old positives are never reused). The `side_distance`
filter drops a chosen nearly identical to the rejected answer. margin = weight = the DSAT
turn's confidence (how sure the classifier is the answer disappointed)."""
from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa

from pipeline.annotate.templates import load_template
from pipeline.config_recipes import Drift
from pipeline.recipes.chat import quote, with_system
from pipeline.recipes.context import RecipeContext, sampling_of
from pipeline.recipes.inputs import dsat_turns
from pipeline.recipes.output import RecipeOutput, head, output
from pipeline.schema import empty
from pipeline.signals.common import id_lists, pairs_table


def drift(spec: Drift, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    turns, skipped = head(dsat_turns(tables["conversations"], ctx.conversations, followups=0), spec.name,
                          spec.max_inputs)
    tpl = load_template("drift_chosen", ("system",), package="pipeline.recipes")
    rows = turns.to_pylist()
    chats = [with_system(r["prompt"] + [{"role": "assistant", "content": r["rejected"]},
                                        {"role": "user", "content": r["feedback"]}], tpl["system"]) for r in rows]
    runner, sampling = ctx.runner(), sampling_of(spec.sampling)
    ctx.log(f"{spec.name}: {ctx.policy_origin} rewrites {len(chats)} answers that drew dissatisfaction")
    began = time.perf_counter()
    results = runner.generate(chats, sampling)
    seconds = time.perf_counter() - began
    ok, chosen, gens, reasons = [], [], [], list(skipped)
    for i, (r, result) in enumerate(zip(rows, results)):
        if result.error is not None:
            reasons.append((r["record_id"], f"{spec.name}: the policy could not take the conversation "
                                            f"({result.error.kind}: {result.error.message})"))
            continue
        ok.append(i)
        chosen.append(result.value[0].text)
        gens.append({"chosen": ctx.generated(runner, sampling, result, 0, ctx.policy_origin)})
    stats = {"dsat_turns": turns.num_rows + len(skipped), "inputs": turns.num_rows, "rewritten": len(ok),
             "generation_seconds": round(seconds, 3)}
    if not ok:
        return output(empty("raw_pairs"), reasons, stats)
    t = turns.take(pa.array(ok))
    conf = t["confidence"].to_numpy()
    evidence = [json.dumps({"recipe_type": "drift", "turn_index": r["turn_index"], "dsat_category": r["category"],
                            "dsat_confidence": r["confidence"], "dsat_rule": r["rule"],
                            "feedback": quote(r["feedback"]), "template": tpl["version"],
                            "template_hash": tpl["hash"], "iteration": ctx.policy.iteration},
                           ensure_ascii=False) for r in t.to_pylist()]
    pairs = pairs_table(
        len(ok), prompt=t["prompt"], chosen=pa.array(chosen, pa.string()), rejected=t["rejected"],
        score_chosen=0.0, score_rejected=-conf, margin=conf, source="conversations", signal="dsat_rewrite",
        annotator="implicit:sat_dsat_rules", weight=np.clip(conf, 0, 1), input_ids=id_lists(t["record_id"]),
        signal_value=conf, evidence=pa.array(evidence), recipe=spec.name, chosen_origin=ctx.policy_origin,
        rejected_origin="log", generator=pa.array([json.dumps(g) for g in gens]))
    return output(pairs, reasons, stats)
