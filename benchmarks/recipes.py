"""Every generation recipe on CPU (the BENCHMARKS.md recipes table): pairs per input and seconds
per pair, cold (a fresh request cache), each recipe alone with its config in data/recipes/ on
the shipped real data. Baseline in the same run: the seconds the model engine itself spent
(generation and scoring calls, as ModelRunner measures them), so `x engine` is what the recipe
adds around the model. Also prints FLR's agreement with the dissatisfaction classifier on the
logged ShareGPT answers (flr_mining's report).

    .venv/bin/python benchmarks/recipes.py [--only drift] [--max-inputs N]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pipeline.config import SourcesConfig, load_config
from pipeline.curation import model_runners
from pipeline.recipes import RecipeContext, run_recipe
from pipeline.sources import read_file

ROOT = Path(__file__).resolve().parent.parent
INPUTS = {"best_of_n": ROOT / "data" / "prompts" / "pandalm.jsonl",
          "drift": ROOT / "data" / "samples" / "sharegpt_multiturn.jsonl.gz",
          "wildfeedback": ROOT / "data" / "samples" / "sharegpt_multiturn.jsonl.gz",
          "pugc": ROOT / "data" / "samples" / "se_beer_posts.jsonl",
          "flr_mining": ROOT / "data" / "samples" / "sharegpt_multiturn.jsonl.gz"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", help="recipe type(s) to run (default: all)")
    ap.add_argument("--max-inputs", type=int, help="override each recipe's max_inputs")
    args = ap.parse_args()
    rows, agreement = [], None
    for kind, path in INPUTS.items():
        if args.only and kind not in args.only:
            continue
        cfg = load_config(ROOT / "data" / "recipes" / f"{kind}.yaml")
        spec = cfg.recipes[0]
        if args.max_inputs:
            spec = spec.model_copy(update={"max_inputs": args.max_inputs})
        tables = read_file(path, SourcesConfig()).tables
        cache = Path(tempfile.mkdtemp(prefix="prefmill-bench-recipes-"))
        runners = model_runners(cfg, cache)
        ctx = RecipeContext(runners, cfg.policy, cfg.signals.conversations, lambda m: print("  " + m, flush=True))
        try:
            runners.get(cfg.policy.model).backend  # engine start is not the recipe's cost
            began = time.perf_counter()
            out = run_recipe(spec, tables, ctx)
            seconds = time.perf_counter() - began
            engine = sum(r.stats.engine_seconds for r in runners.open.values())
        finally:
            runners.close()
        inputs = out.stats["inputs"]  # what the recipe took (after max_inputs)
        agreement = out.stats.get("agreement", agreement)
        pairs = out.result.pairs.num_rows
        rows.append({"recipe": kind, "inputs": inputs, "pairs": pairs,
                     "pairs_per_input": round(pairs / inputs, 3) if inputs else None,
                     "seconds": round(seconds, 1), "seconds_per_pair": round(seconds / pairs, 1) if pairs else None,
                     "engine_seconds": round(engine, 1), "x_engine": round(seconds / engine, 2) if engine else None})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| recipe | inputs | pairs | pairs/input | s | s/pair | engine s | × engine |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['inputs']} | {r['pairs']} | {r['pairs_per_input']} | {r['seconds']} | "
              f"{r['seconds_per_pair']} | {r['engine_seconds']} | {r['x_engine']} |")
    if agreement:
        print("\nFLR vs SAT/DSAT labels of the next user turn:", json.dumps({k: v for k, v in agreement.items()
                                                                            if k != "scorer"}))


if __name__ == "__main__":
    main()
