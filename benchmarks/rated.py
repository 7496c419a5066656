"""Re-curating rated candidates at scale: `prefmill curate` on a synthetic UltraFeedback file of N
prompts x 4 candidates (benchmarks/rated_synth.py: ties, duplicate texts, 1% unusable scores),
against a naive pure-Python loop that reads the same file and makes the same best-vs-worst
selection, in the same run.

    .venv/bin/python benchmarks/rated.py                 # N = 100k and 1M
    .venv/bin/python benchmarks/rated.py --n 100000

Printed per N: the CLI's wall time and prompts/s (a real Prefect flow run, with Prefect's temporary
server and against a running server), the same streamed stages in-process without Prefect, the
CLI's peak RSS, and the naive loop's time with the ratio. The config (benchmarks/rated.yaml) turns off the two model-based analyses
whose cost does not depend on the pair stage: semantic prompt dedup (sentence embeddings) and
the mixing report's separability probe."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import rated_synth  # noqa: E402
from flows.local_server import prefect_server  # noqa: E402

CONFIG = ROOT / "benchmarks" / "rated.yaml"
DATA = Path(os.environ.get("PREFMILL_BENCH_DATA", ROOT / "data" / "workspace" / "bench"))
WS = re.compile(r"[\t\n\f\r ]+")


LEDGER = ("inputs", "kept", "filtered", "quarantined", "pairs")  # the --json keys two runs' versions must share


def sizes(doc: str) -> list[int]:
    """The --n argument of a rated benchmark (N = 100k and 1M by default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    DATA.mkdir(parents=True, exist_ok=True)
    return parser.parse_args().n


@contextmanager
def served_without_dashboard():
    """A running Prefect server (yields its API URL), with CONFIG switched to benchmarks/rated.yaml
    plus the dashboard off while it runs."""
    global CONFIG
    with tempfile.TemporaryDirectory(dir=DATA) as home, prefect_server(Path(home)) as api_url:
        original, CONFIG = CONFIG, Path(home) / "no-dashboard.yaml"
        CONFIG.write_text(yaml.safe_dump({**yaml.safe_load(original.read_text()), "dashboard": {"enabled": False}}))
        try:
            yield api_url
        finally:
            CONFIG = original


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


def cli(paths: Path | list[Path], workspace: Path, api_url: str | None = None, dataset: str = "rated",
        incremental: bool = False, dask_address: str | None = None) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, the --json line) of one `prefmill curate` run: against the Prefect
    server at `api_url`, or with Prefect's temporary server when None."""
    paths = paths if isinstance(paths, list) else [paths]
    cmd = [str(Path(sys.executable).parent / "prefmill"), "curate", *map(str, paths), "-d", dataset,
           "-w", str(workspace), "-c", str(CONFIG), "--json", *(["--incremental"] if incremental else []),
           *(["--dask-address", dask_address] if dask_address else [])]
    env = {**os.environ, **({"PREFECT_API_URL": api_url} if api_url else {})}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"prefmill curate failed ({status}):\n{out[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, json.loads(out.strip().splitlines()[-1])


def stages(path: Path, workspace: Path) -> tuple[float, dict]:
    """The streamed stages the flow runs on rated files, called in-process (no Prefect)."""
    from pipeline.config import CurateConfig
    from pipeline.store.commit import commit_staged, stage
    from pipeline.streamed import StreamedRun

    cfg = CurateConfig.model_validate(yaml.safe_load(CONFIG.read_text()))
    times, start = {}, time.perf_counter()
    staging = stage(workspace, "rated-stages")
    run = StreamedRun(staging, cfg, workspace / "cache")
    run.add_file(path, path.name)
    times["read+pair"] = time.perf_counter() - start
    run.select()
    times["run-wide filters"] = time.perf_counter() - start - sum(times.values())
    manifest = run.write(None)
    times["write"] = time.perf_counter() - start - sum(times.values())
    commit_staged(workspace, "rated-stages", staging, manifest)
    times["commit"] = time.perf_counter() - start - sum(times.values())
    return time.perf_counter() - start, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    print("prompts/s; x naive = the naive loop's seconds / ours (above 1: we are faster)")
    print(f"{'N':>9} | {'naive s':>7} | {'CLI, temp server':>22} | {'CLI, Prefect server':>22} | "
          f"{'stages, no Prefect':>22} | {'peak RSS MB':>11} | {'pairs':>9} | {'naive pairs':>11}")
    with tempfile.TemporaryDirectory(dir=DATA) as home, prefect_server(Path(home)) as api_url:
        for n in args.n:
            path = rated_synth.write(DATA / f"uf_{n}.jsonl", n)
            naive_s, naive_pairs = naive(path)
            with tempfile.TemporaryDirectory(dir=DATA) as tmp:
                ws = Path(tmp)
                temp_s, rss, result = cli(path, ws / "cli")
                server_s, rss_server, _ = cli(path, ws / "cli-server", api_url)
                stage_s, times = stages(path, ws / "stages")

            def cell(seconds: float) -> str:
                return f"{seconds:6.1f} s {n / seconds:7,.0f} {naive_s / seconds:4.2f}x"

            print(f"{n:>9,} | {naive_s:>7.1f} | {cell(temp_s):>22} | {cell(server_s):>22} | {cell(stage_s):>22} | "
                  f"{max(rss, rss_server):>11,.0f} | {result['pairs']:>9,} | {naive_pairs:>11,}", flush=True)
            print("          stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), flush=True)


if __name__ == "__main__":
    main()
