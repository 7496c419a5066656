"""On-policy best-of-N (methods S8; the SimPO / CDR on-policy recipe): prompts from prompt files,
the first request of logged conversations or community questions -> N samples from the policy
-> a pointwise scorer (rubric judge, FLR, density ratio, RM ensemble) -> chosen = best,
rejected = worst. The margin and consistency filters then apply like to any pair."""
from __future__ import annotations

import pyarrow as pa

from pipeline.config_recipes import BestOfN
from pipeline.recipes.context import RecipeContext
from pipeline.recipes.inputs import recipe_prompts
from pipeline.recipes.output import RecipeOutput, head, output
from pipeline.recipes.ranking import sample_and_rank


def best_of_n(spec: BestOfN, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    prompts, skipped = head(recipe_prompts(tables, spec.prompts_from), spec.name, spec.max_inputs)
    prompts = prompts.append_column("record_ids", pa.array([[r] for r in prompts["record_id"].to_pylist()],
                                                           pa.list_(pa.string())))
    ranked = sample_and_rank(ctx, spec.name, spec.type, prompts, spec.n, spec.sampling, spec.scorer,
                             signal=spec.scorer.type)
    return output(ranked.pairs, ranked.unpaired + skipped, {"inputs": prompts.num_rows, **ranked.stats})
