"""Generation recipes: named, configurable ways to make preference pairs with the model layer
and the annotators (methods.md S1, S3, S4, S6, S8). Each takes the run's input tables and
returns pairs (with the recipe's name, the origin of each side and the generator's lineage) plus
the records it made no pair from, with the reason, so the ledger still balances."""
from __future__ import annotations

import importlib

import pyarrow as pa

from pipeline.recipes.context import RecipeContext
from pipeline.recipes.output import RecipeOutput


def run_recipe(spec, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    """Run one recipe: module pipeline/recipes/TYPE.py defines the function TYPE."""
    module = importlib.import_module(f"pipeline.recipes.{spec.type}")
    return getattr(module, spec.type)(spec, tables, ctx)


__all__ = ["RecipeContext", "RecipeOutput", "run_recipe"]
