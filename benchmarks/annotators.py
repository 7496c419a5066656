"""Every CPU annotator against human judgments (the BENCHMARKS.md agreement table).

1. Curates training pairs for the reward models from samples that share no text with the
   evaluation files (Stack Exchange votes, ShareGPT DSAT->SAT, IteraTeR R3 edits; LAMP edits are
   left out because LAMP rankings judge the same texts) and trains three all-MiniLM-L6-v2 heads
   (seeds 0, 1, 2) into WORKSPACE/rm.
2. Runs `prefmill eval-annotators` cold (no request cache) on PandaLM, LAMP and WQRM with the
   default CPU set (SmolLM2-135M-Instruct judges, FLR, density ratio over its half-depth sibling,
   the reward-model ensemble).
3. Prints the table with two baselines measured on the same items: "the first listed response
   wins" and "the longer response wins".

    .venv/bin/python benchmarks/annotators.py [--limit-pandalm 24] [--limit-rankings 12]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.annotate.evaluate import agreement_metrics, human_items
from pipeline.config import SourcesConfig
from pipeline.sources import read_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
PREFMILL = str(Path(sys.executable).parent / "prefmill")
TRAIN = ["se_beer_posts.jsonl", "se_history_meta_posts.jsonl", "se_history_meta_comments.jsonl",
         "sharegpt_multiturn.jsonl.gz", "r3_human_in_the_loop_revisions.jsonl"]
EVAL = {"pairwise_pandalm_human.jsonl": "pandalm", "lamp_expert_rankings.jsonl": "rankings",
        "wqrm_expert_rankings.jsonl": "rankings"}


def prefmill(*args) -> str:
    proc = subprocess.run([PREFMILL, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"prefmill {args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def baselines(name: str, limit: int) -> list[dict]:
    items = human_items(read_file(SAMPLES / name, SourcesConfig()).tables["judgments"], limit)
    human = items["human"].to_pylist()
    la = [len(x) for x in items["response_a"].to_pylist()]
    lb = [len(x) for x in items["response_b"].to_pylist()]
    longer = ["a" if x > y else "b" if x < y else "tie" for x, y in zip(la, lb)]
    return [{"file": name, "annotator": "baseline: first listed", **agreement_metrics(human, ["a"] * len(human), [1.0] * len(human))},
            {"file": name, "annotator": "baseline: longer wins",
             **agreement_metrics(human, longer, [{"a": 1.0, "b": 0.0, "tie": 0.5}[v] for v in longer])}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit-pandalm", type=int, default=24)
    ap.add_argument("--limit-rankings", type=int, default=12)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="prefmill-bench-ann-"))
    curated = json.loads(prefmill("curate", *[str(SAMPLES / f) for f in TRAIN], "-d", "rmtrain", "-w", str(ws),
                                  "--json").strip().splitlines()[-1])
    pairs = sorted(Path(curated["path"]).glob("pairs*.parquet"))
    trained = json.loads(prefmill("rm", "train", *map(str, pairs), "--out", str(ws / "rm"), "--seed", "0", "--seed", "1",
                                  "--seed", "2", "-w", str(ws), "--json").strip().splitlines()[-1])
    print(f"reward models trained on {curated['pairs']} pairs: {json.dumps(trained)[:400]}")
    rows = []
    for name, kind in EVAL.items():
        limit = args.limit_pandalm if kind == "pandalm" else args.limit_rankings
        got = json.loads(prefmill("eval-annotators", str(SAMPLES / name), "--limit", str(limit), "--no-cache",
                                  "-w", str(ws), "--json").strip().splitlines()[-1])
        rows += baselines(name, limit) + got["results"]
        models = {a["type"]: a for a in got["annotators"]}
    cols = ["file", "annotator", "items", "coverage", "accuracy", "acc_p", "kappa", "flip_rate",
            "first_position_win_rate", "seconds_per_pair"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("" if r.get(c) is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])
                                for c in cols) + " |")
    print(json.dumps({"rows": rows, "annotators": models}, default=str)[:2000])


if __name__ == "__main__":
    main()
