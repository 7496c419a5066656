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

import time

import pyarrow as pa

from pipeline.annotate.base import row_error
from pipeline.annotate.templates import load_template
from pipeline.config_recipes import Drift
from pipeline.recipes.chat import with_system
from pipeline.recipes.context import RecipeContext, sampling_of
from pipeline.recipes.inputs import dsat_turns
from pipeline.recipes.output import RecipeOutput, dsat_anchored, head, output


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
                                            f"({row_error(result)})"))
            continue
        ok.append(i)
        chosen.append(result.value[0].text)
        gens.append({"chosen": ctx.generated(runner, sampling, result, 0, ctx.policy_origin)})
    stats = {"dsat_turns": turns.num_rows + len(skipped), "inputs": turns.num_rows, "rewritten": len(ok),
             "generation_seconds": round(seconds, 3)}
    extra = [{"template": tpl["version"], "template_hash": tpl["hash"], "iteration": ctx.policy.iteration}] * len(ok)
    pairs = dsat_anchored(turns, ok, chosen, gens, extra, name=spec.name, recipe_type="drift", signal="dsat_rewrite",
                          annotator="implicit:sat_dsat_rules", chosen_origin=ctx.policy_origin)
    return output(pairs, reasons, stats)
