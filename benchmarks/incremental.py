"""Incremental runs: what a run costs when 1% of its records are new, against a full rebuild of
the same inputs, in the same run. Inputs: the rated benchmark's synthetic UltraFeedback file of N
prompts (benchmarks/rated_synth.py) and N/100 new prompts, as production layouts have them:

- daily files: yesterday's file unchanged, today's file new (`curate old.jsonl new.jsonl`);
- one growing log: the new lines appended to the file the parent read.

    .venv/bin/python benchmarks/incremental.py               # N = 100k and 1M
    .venv/bin/python benchmarks/incremental.py --n 100000

Every run is `prefmill curate` end to end against a running Prefect server, with
benchmarks/rated.yaml and the dashboard off. Printed per N and layout: the seconds of the full
rebuild and of the incremental run, end to end (process start and imports included) and as the
flow run alone (Prefect's own `total_run_time`), with the ratios (the goal is <= 5%); a run with
nothing new (the floor); and whether the incremental version's ledger equals the full rebuild's.
The full rebuild runs once; the incremental run and the run with nothing new, a few seconds each,
run 5 times, each on a fresh copy of the base version's workspace (synced to disk before it is
timed), and the median is kept.
The version's dashboard, which a run builds when it is on, is timed once per N: it reads the whole
version, so it costs the same after a full or an incremental run."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import rated  # noqa: E402
import rated_synth  # noqa: E402

REPEATS = 5  # the short runs vary by up to a second here: each is timed 5 times and the median kept


def curate(paths, ws: Path, api_url: str, dataset: str, incremental: bool = False) -> tuple[float, float, dict]:
    """(seconds end to end, seconds of the flow run that made the version, the --json line). After
    a run with nothing new, the flow run is the one that made the version it returned."""
    seconds, _, out = rated.cli(paths, ws, api_url, dataset=dataset, incremental=incremental)
    manifest = json.loads((Path(out["path"]) / "manifest.json").read_text())
    return seconds, httpx.get(f"{api_url}/flow_runs/{manifest['flow_run_id']}").json()["total_run_time"], out


def increments(base_ws: Path, paths: list[Path], api_url: str, dataset: str) -> tuple[tuple, tuple, Path]:
    """(the incremental run, then a run with nothing new, the workspace of the last repeat): each
    the median by seconds end to end of REPEATS runs, every repeat on a fresh copy of `base_ws`,
    which holds the base version only."""
    incs, idles = [], []
    for r in range(REPEATS):
        ws = base_ws.with_name(f"{base_ws.name}-{r}")
        shutil.copytree(base_ws, ws)
        os.sync()  # else the copy's dirty pages are written back while the run is timed
        incs.append(curate(paths, ws, api_url, dataset, incremental=True))
        idles.append(curate(paths, ws, api_url, dataset, incremental=True))
    print(f"{'':>9} | {dataset}: incremental runs {', '.join(f'{t[0]:.1f}' for t in incs)} s; "
          f"nothing new {', '.join(f'{t[0]:.1f}' for t in idles)} s", flush=True)
    return sorted(incs, key=lambda t: t[0])[REPEATS // 2], sorted(idles, key=lambda t: t[0])[REPEATS // 2], ws


def main() -> None:
    ns = rated.sizes(__doc__)
    print("seconds of `prefmill curate`, end to end | flow run only; ratio = incremental / full rebuild")
    print(f"{'N':>9} | {'layout':>12} | {'full rebuild':>15} | {'incremental':>13} | {'ratio':>13} | "
          f"{'nothing new':>11} | ledger = full's")
    with rated.served_without_dashboard() as api_url:
        for n in ns:
            old = rated_synth.write(rated.DATA / f"uf_{n}.jsonl", n)
            new = rated_synth.write(rated.DATA / f"uf_{n}_plus_{n // 100}.jsonl", n // 100, start=n)
            with tempfile.TemporaryDirectory(dir=rated.DATA) as tmp:
                full = curate([old, new], Path(tmp) / "full", api_url, "full")
                curate([old], Path(tmp) / "daily", api_url, "daily")
                inc, idle, ws = increments(Path(tmp) / "daily", [old, new], api_url, "daily")
                row(n, "daily files", full, inc, idle)
                log = Path(tmp) / "log.jsonl"
                shutil.copyfile(old, log)
                curate([log], Path(tmp) / "log", api_url, "log")
                with log.open("ab") as out, new.open("rb") as more:
                    shutil.copyfileobj(more, out)
                row(n, "appended log", full, *increments(Path(tmp) / "log", [log], api_url, "log")[:2])
                from dashboards.build import build_dashboard
                start = time.perf_counter()
                build_dashboard(ws, f"daily@{inc[2]['version']}", Path(tmp) / "board")
                print(f"{'':>9} | the dashboard of the {inc[2]['pairs']:,}-pair version: "
                      f"{time.perf_counter() - start:.1f} s (after a full or an incremental run alike)", flush=True)


def row(n: int, layout: str, full: tuple, inc: tuple, idle: tuple) -> None:
    same = all(inc[2][k] == full[2][k] for k in rated.LEDGER)
    print(f"{n:>9,} | {layout:>12} | {full[0]:>5.1f} | {full[1]:>5.1f} s | {inc[0]:>4.1f} | {inc[1]:>4.1f} s | "
          f"{inc[0] / full[0]:>5.1%} | {inc[1] / full[1]:>5.1%} | {idle[0]:>9.1f} s | "
          f"{'yes' if same else 'NO: ' + str({k: (inc[2][k], full[2][k]) for k in rated.LEDGER})}", flush=True)


if __name__ == "__main__":
    main()
