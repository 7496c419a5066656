"""Incremental runs: what a run costs when 1% of its records are new, against a full rebuild of
the same inputs, in the same run. Inputs: the rated benchmark's synthetic UltraFeedback file of N
prompts (benchmarks/rated_synth.py) and N/100 new prompts, as the production layouts have them:

- daily files: yesterday's file unchanged, today's file new (`curate old.jsonl new.jsonl`);
- one growing log: the new lines appended to the file the parent read.

    .venv/bin/python benchmarks/incremental.py               # N = 100k and 1M
    .venv/bin/python benchmarks/incremental.py --n 100000

Every run is `prefmill curate` end to end (process start, a real Prefect flow run against a
running Prefect server, the version commit and its dashboard), with benchmarks/rated.yaml. Printed
per N: the full rebuild's seconds, the incremental run's seconds and its ratio to the full rebuild
(the goal is <= 5%), a run with nothing new (the floor: imports, Prefect, planning), and a check
that the incremental version's ledger equals the full rebuild's."""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import rated_synth  # noqa: E402
from flows.local_server import prefect_server  # noqa: E402
from rated import DATA, cli  # noqa: E402

LEDGER = ("inputs", "kept", "filtered", "quarantined", "pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    print("seconds of `prefmill curate` (running Prefect server); ratio = incremental / full rebuild")
    print(f"{'N':>9} | {'layout':>12} | {'full rebuild':>12} | {'incremental':>11} | {'ratio':>6} | "
          f"{'nothing new':>11} | {'peak RSS MB':>11} | ledger = full's")
    with tempfile.TemporaryDirectory(dir=DATA) as home, prefect_server(Path(home)) as api_url:
        for n in args.n:
            old = rated_synth.write(DATA / f"uf_{n}.jsonl", n)
            new = rated_synth.write(DATA / f"uf_{n}_plus_{n // 100}.jsonl", n // 100, start=n)
            with tempfile.TemporaryDirectory(dir=DATA) as tmp:
                ws = Path(tmp) / "ws"
                full_s, _, full = cli([old, new], ws, api_url, dataset="full")
                cli([old], ws, api_url, dataset="daily")
                inc_s, rss, inc = cli([old, new], ws, api_url, dataset="daily", incremental=True)
                idle_s, _, _ = cli([old, new], ws, api_url, dataset="daily", incremental=True)
                row(n, "daily files", full_s, inc_s, idle_s, rss, inc, full)
                log = Path(tmp) / "log.jsonl"
                shutil.copyfile(old, log)
                cli([log], ws, api_url, dataset="log")
                with log.open("ab") as out, new.open("rb") as more:
                    shutil.copyfileobj(more, out)
                inc_s, rss, inc = cli([log], ws, api_url, dataset="log", incremental=True)
                idle_s, _, _ = cli([log], ws, api_url, dataset="log", incremental=True)
                row(n, "appended log", full_s, inc_s, idle_s, rss, inc, full)


def row(n: int, layout: str, full_s: float, inc_s: float, idle_s: float, rss: float, inc: dict, full: dict) -> None:
    same = all(inc[k] == full[k] for k in LEDGER)
    print(f"{n:>9,} | {layout:>12} | {full_s:>10.1f} s | {inc_s:>9.1f} s | {inc_s / full_s:>5.1%} | "
          f"{idle_s:>9.1f} s | {rss:>11,.0f} | {'yes' if same else 'NO: ' + str({k: (inc[k], full[k]) for k in LEDGER})}",
          flush=True)


if __name__ == "__main__":
    main()
