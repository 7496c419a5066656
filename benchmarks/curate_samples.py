"""Where the time of `curate` goes on the full shipped samples (data/samples/, ~8,500 records).

Prints seconds per stage and each as a ratio to a named baseline measured in the same run:
`naive read` = plain Python `json.loads` of every line of every file (the least any reader
must do). Also times the whole `prefmill curate` command (Prefect flow, ephemeral server
included) and the semantic-dedup embedding step cold vs warm cache.

    .venv/bin/python benchmarks/curate_samples.py
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "data" / "samples").iterdir() if p.suffix in (".jsonl", ".gz"))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def naive_read() -> int:
    n = 0
    for path in SAMPLES:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            n += sum(1 for line in fh if line.strip() and json.loads(line) is not None)
    return n


def main() -> None:
    from pipeline.config import CurateConfig
    from pipeline.curation import SOURCE_KINDS, combine, miner, select_pairs, version_tables_and_manifest
    from pipeline.sources import read_inputs
    from pipeline.store import commit_version

    cfg = CurateConfig()
    rows = []
    base, n_records = timed(naive_read)
    rows.append(("naive read (baseline)", base))
    t, batch = timed(lambda: read_inputs([str(p) for p in SAMPLES], cfg.sources))
    rows.append(("read + normalize + quarantine + PII", t))
    results = []
    for kind in SOURCE_KINDS:
        t, res = timed(lambda: miner(kind, cfg)(batch.tables[kind]))
        results.append(res)
        rows.append((f"signal: {kind} ({batch.tables[kind].num_rows} rows)", t))
    signals = combine(results)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        t, (pairs, lineage, stats) = timed(lambda: select_pairs(signals.pairs, cfg, cache))
        rows.append(("pairs + filters, embeddings cold (incl. model load)", t))
        t, _ = timed(lambda: select_pairs(signals.pairs, cfg, cache))
        rows.append(("pairs + filters, embeddings cached", t))
        t, (tables, manifest) = timed(lambda: version_tables_and_manifest(
            batch, signals, pairs, lineage, stats, cfg, None))
        rows.append(("ledger + manifest", t))
        summary = manifest["ledger"]
        t, _ = timed(lambda: commit_version(Path(tmp) / "ws", "bench", tables, manifest))
        rows.append(("commit version + catalog refresh", t))
        cli = str(Path(sys.executable).parent / "prefmill")
        t, _ = timed(lambda: subprocess.run([cli, "curate", *map(str, SAMPLES), "--dataset", "bench",
                                             "--workspace", str(Path(tmp) / "ws2")], check=True,
                                            capture_output=True))
        rows.append(("whole `prefmill curate` command (cold cache, Prefect ephemeral)", t))
    print(f"{n_records} records in {len(SAMPLES)} files; {summary['pairs']} pairs kept\n")
    print(f"{'stage':68} {'seconds':>8} {'x naive read':>13}")
    for name, secs in rows:
        print(f"{name:68} {secs:8.2f} {secs / base:13.1f}")


if __name__ == "__main__":
    main()
