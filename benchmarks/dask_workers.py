"""Streamed curation on Dask workers: `prefmill curate --dask-address` on the rated benchmark's
synthetic UltraFeedback file (benchmarks/rated_synth.py), with a LocalCluster of 1 and then 2
worker processes (one thread each), against the single-process run (no Dask: a parse thread plus
the main thread), in the same run.

    .venv/bin/python benchmarks/dask_workers.py               # N = 100k and 1M
    .venv/bin/python benchmarks/dask_workers.py --n 100000

Every run is the CLI end to end against a running Prefect server, with benchmarks/rated.yaml and
the dashboard off. Printed per N: seconds and prompts/s of each run, the 2-worker / 1-worker
speed-up, and whether each Dask version's ledger equals the single-process one's. On this 2-core
machine the workers share the cores with the process that reads the file and runs the run-wide
phases, so the speed-up is bounded well below 2."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from distributed import LocalCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import rated  # noqa: E402
import rated_synth  # noqa: E402


def main() -> None:
    ns = rated.sizes(__doc__)
    print("seconds and prompts/s of `prefmill curate` (running Prefect server)")
    print(f"{'N':>9} | {'single process':>16} | {'Dask, 1 worker':>16} | {'Dask, 2 workers':>16} | "
          f"{'2 vs 1 worker':>13} | ledgers equal")
    with rated.served_without_dashboard() as api_url:
        for n in ns:
            path = rated_synth.write(rated.DATA / f"uf_{n}.jsonl", n)
            with tempfile.TemporaryDirectory(dir=rated.DATA) as tmp:
                ws = Path(tmp) / "ws"
                runs = {"single": rated.cli(path, ws, api_url, dataset="single")}
                for workers in (1, 2):
                    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
                        runs[workers] = rated.cli(path, ws, api_url, dataset=f"dask{workers}",
                                                  dask_address=cluster.scheduler_address)
            same = all(runs[w][2][k] == runs["single"][2][k] for w in (1, 2) for k in rated.LEDGER)
            cells = [f"{runs[k][0]:5.1f} s {n / runs[k][0]:7,.0f}/s" for k in ("single", 1, 2)]
            print(f"{n:>9,} | {cells[0]:>16} | {cells[1]:>16} | {cells[2]:>16} | "
                  f"{runs[1][0] / runs[2][0]:>12.2f}x | {'yes' if same else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
