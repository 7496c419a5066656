"""FLR mining (methods 1.1 use (ii), S1): rank N on-policy samples by follow-up likelihood and
pair the best with the worst. Alongside, FLR is checked against real users: every logged
answer whose next user turn the dissatisfaction classifier labels SAT or DSAT is scored by the
same FLR annotator, and the report says how often the two agree:

* auc: the probability that an answer the user was satisfied with outscores one that drew
  dissatisfaction (0.5 = chance);
* sign_agreement: the share of answers where FLR > 0 (positive follow-ups likelier than
  negative ones) matches a SAT label and FLR <= 0 a DSAT label."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config_recipes import FlrMining
from pipeline.recipes.best_of_n import best_of_n
from pipeline.recipes.context import RecipeContext
from pipeline.recipes.inputs import answer_reactions
from pipeline.recipes.output import RecipeOutput


def flr_mining(spec: FlrMining, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    out = best_of_n(spec, tables, ctx)
    if spec.agreement.enabled:
        out.stats["agreement"] = flr_agreement(spec, tables["conversations"], ctx)
    return out


def labelled_answers(conversations: pa.Table, ctx: RecipeContext) -> pa.Table:
    """Every logged answer whose next user turn is labelled SAT or DSAT: the conversation up to
    the request (prompt), the answer (response), and the label of the turn after it."""
    t = answer_reactions(conversations, ctx.conversations, ("SAT", "DSAT"))
    return pa.table({"record_id": t["record_id"], "prompt": t["prompt"], "response": t["answer"],
                     "label": t["label"], "category": t["category"]})


def flr_agreement(spec: FlrMining, conversations: pa.Table, ctx: RecipeContext) -> dict:
    from sklearn.metrics import roc_auc_score

    if not conversations.num_rows:
        return {"answers": 0}
    items = labelled_answers(conversations, ctx)
    prompt = items["prompt"].combine_chunks()
    chars = np.bincount(pc.list_parent_indices(prompt).to_numpy(), minlength=items.num_rows,
                        weights=pc.utf8_length(prompt.flatten().field("content")).to_numpy(zero_copy_only=False)) \
        + pc.utf8_length(items["response"]).to_numpy(zero_copy_only=False)
    fits = np.flatnonzero(chars <= spec.agreement.max_context_chars)
    chosen = fits[:spec.agreement.max_turns]
    sub = items.take(pa.array(chosen, pa.int64()))
    ctx.log(f"{spec.name}: FLR on {sub.num_rows} logged answers with a SAT/DSAT next turn")
    scorer = ctx.scorer(spec.scorer)
    scored = scorer.score(sub.select(["prompt", "response"])) if sub.num_rows else None
    score = np.array([np.nan if s is None else s for s in scored["score"].to_pylist()]) if scored else np.zeros(0)
    sat = sub["label"].to_numpy(zero_copy_only=False) == "SAT"
    ok = np.isfinite(score)
    report = {"labelled_answers": items.num_rows, "too_long": int(len(items) - len(fits)),
              "scored": int(ok.sum()), "sat": int((sat & ok).sum()), "dsat": int((~sat & ok).sum()),
              "mean_flr_sat": _mean(score[sat & ok]), "mean_flr_dsat": _mean(score[~sat & ok]),
              "sign_agreement": _mean(((score > 0) == sat)[ok]), "auc": None,
              "max_context_chars": spec.agreement.max_context_chars, "scorer": scorer.describe()}
    if (sat & ok).any() and (~sat & ok).any():
        report["auc"] = round(float(roc_auc_score(sat[ok], score[ok])), 4)
    return report


def _mean(values: np.ndarray) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None
