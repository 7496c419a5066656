"""Re-curating rated candidates at scale: `prefmill curate` on a synthetic UltraFeedback file of N
prompts x 4 candidates (benchmarks/rated_synth.py: ties, duplicate texts, 1% unusable scores),
against a naive pure-Python loop that reads the same file and makes the same best-vs-worst
selection, in the same run.

    .venv/bin/python benchmarks/rated.py                 # N = 100k and 1M
    .venv/bin/python benchmarks/rated.py --n 100000

Printed per N: the CLI's wall time and prompts/s (a real Prefect flow run, its temporary server
included), the same stages in-process without Prefect, the CLI's peak RSS, and the naive loop's
time with the ratio. The config (benchmarks/rated.yaml) turns off the two model-based analyses
whose cost does not depend on the pair stage: semantic prompt dedup (sentence embeddings) and
the mixing report's separability probe."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import rated_synth  # noqa: E402

CONFIG = ROOT / "benchmarks" / "rated.yaml"
DATA = Path(os.environ.get("PREFMILL_BENCH_DATA", ROOT / "data" / "workspace" / "bench"))
WS = re.compile(r"[\t\n\f\r ]+")


def naive(path: Path) -> tuple[float, int]:
    """Read line by line, json.loads, best vs worst by fine-grained_score with the tie rule: the
    selection the pair stage makes, as a plain loop (no ledger, no files written)."""
    start, pairs = time.perf_counter(), []
    with path.open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            cands = [(c["fine-grained_score"], -k, c["response"]) for k, c in enumerate(rec["completions"])
                     if isinstance(c.get("fine-grained_score"), (int, float)) and not isinstance(c["fine-grained_score"], bool)]
            if len(cands) < 2:
                continue
            best = max(cands)
            norm_best = WS.sub(" ", best[2]).strip()
            lower = [c for c in cands if c[0] < best[0] and WS.sub(" ", c[2]).strip() != norm_best]
            if lower:
                worst = min(lower, key=lambda c: (c[0], c[1]))
                pairs.append((rec["instruction"], best[2], worst[2]))
    return time.perf_counter() - start, len(pairs)


def cli(path: Path, workspace: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, the --json line) of one `prefmill curate` run."""
    cmd = [str(Path(sys.executable).parent / "prefmill"), "curate", str(path), "-d", "rated", "-w", str(workspace),
           "-c", str(CONFIG), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"prefmill curate failed ({status}):\n{out[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, json.loads(out.strip().splitlines()[-1])


def stages(path: Path, workspace: Path) -> tuple[float, dict]:
    """The flow's stages called in-process (no Prefect): read, mine, pairs + filters, ledger, commit."""
    from pipeline.config import CurateConfig
    from pipeline.curation import miner, select_pairs, version_tables_and_manifest
    from pipeline.sources import read_file
    from pipeline.store import commit_version

    cfg = CurateConfig.model_validate(yaml.safe_load(CONFIG.read_text()))
    times, start = {}, time.perf_counter()
    batch = read_file(path, cfg.sources, path.name)
    times["read"] = time.perf_counter() - start
    mined = miner("rated", cfg)(batch.tables["rated"])
    times["mine"] = time.perf_counter() - start - sum(times.values())
    pairs, lineage, stats = select_pairs(mined.pairs, cfg, workspace / "cache")
    times["pairs+filters"] = time.perf_counter() - start - sum(times.values())
    tables, manifest = version_tables_and_manifest(batch, mined, pairs, lineage, stats, cfg, None)
    times["ledger"] = time.perf_counter() - start - sum(times.values())
    commit_version(workspace, "rated-stages", tables, manifest)
    times["commit"] = time.perf_counter() - start - sum(times.values())
    return time.perf_counter() - start, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{'N':>9} | {'CLI s':>7} | {'CLI prompts/s':>13} | {'stages s':>8} | {'stages prompts/s':>16} | "
          f"{'peak RSS MB':>11} | {'naive s':>7} | {'naive pairs':>11} | {'pairs':>9} | CLI vs naive | stages vs naive")
    for n in args.n:
        path = rated_synth.write(DATA / f"uf_{n}.jsonl", n)
        naive_s, naive_pairs = naive(path)
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            ws = Path(tmp)
            cli_s, rss, result = cli(path, ws / "cli")
            stage_s, times = stages(path, ws / "stages")
        print(f"{n:>9,} | {cli_s:>7.1f} | {n / cli_s:>13,.0f} | {stage_s:>8.1f} | {n / stage_s:>16,.0f} | "
              f"{rss:>11,.0f} | {naive_s:>7.1f} | {naive_pairs:>11,} | {result['pairs']:>9,} | "
              f"{naive_s / cli_s:>11.2f}x | {naive_s / stage_s:>14.2f}x", flush=True)
        print("          stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), flush=True)
    shutil.rmtree(DATA / "cache", ignore_errors=True)


if __name__ == "__main__":
    main()
