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
The version's dashboard, which a run builds when it is on, is timed once per N: it reads the whole
version, so it costs the same after a full or an incremental run."""
from __future__ import annotations

import json
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

def curate(paths, ws: Path, api_url: str, dataset: str, incremental: bool = False) -> tuple[float, float, dict]:
    """(seconds end to end, seconds of the flow run that made the version, the --json line). After
    a run with nothing new, the flow run is the one that made the version it returned."""
    seconds, _, out = rated.cli(paths, ws, api_url, dataset=dataset, incremental=incremental)
    manifest = json.loads((Path(out["path"]) / "manifest.json").read_text())
    return seconds, httpx.get(f"{api_url}/flow_runs/{manifest['flow_run_id']}").json()["total_run_time"], out


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
                ws = Path(tmp) / "ws"
                full = curate([old, new], ws, api_url, "full")
                curate([old], ws, api_url, "daily")
                inc = curate([old, new], ws, api_url, "daily", incremental=True)
                idle = curate([old, new], ws, api_url, "daily", incremental=True)
                row(n, "daily files", full, inc, idle)
                log = Path(tmp) / "log.jsonl"
                shutil.copyfile(old, log)
                curate([log], ws, api_url, "log")
                with log.open("ab") as out, new.open("rb") as more:
                    shutil.copyfileobj(more, out)
                inc = curate([log], ws, api_url, "log", incremental=True)
                idle = curate([log], ws, api_url, "log", incremental=True)
                row(n, "appended log", full, inc, idle)
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
