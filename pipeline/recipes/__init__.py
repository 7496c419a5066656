"""Generation recipes: named, configurable ways to make preference pairs with the model layer
and the annotators (methods.md S1, S3, S4, S6, S8). Each takes the run's input tables and
returns pairs (with the recipe's name, the origin of each side and the generator's lineage) plus
the records it made no pair from, with the reason, so the ledger still balances."""
from __future__ import annotations

import pyarrow as pa

from pipeline.recipes.context import RecipeContext
from pipeline.recipes.output import RecipeOutput


def run_recipe(spec, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    from pipeline.recipes.best_of_n import best_of_n
    from pipeline.recipes.drift import drift
    from pipeline.recipes.flr_mining import flr_mining
    from pipeline.recipes.pugc import pugc
    from pipeline.recipes.wildfeedback import wildfeedback

    run = {"best_of_n": best_of_n, "flr_mining": flr_mining, "drift": drift, "wildfeedback": wildfeedback,
           "pugc": pugc}[spec.type]
    return run(spec, tables, ctx)


__all__ = ["RecipeContext", "RecipeOutput", "run_recipe"]
