"""The curation stages the `curate` flow composes: mine signals per table, turn them into
filtered pairs, and assemble the manifest. Pure functions over Arrow tables (no Prefect)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import cache
from importlib.metadata import version as pkg_version
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import value_counts
from pipeline.config import CurateConfig
from pipeline.filters import apply_filters
from pipeline.filters.prior import Prior, repeated_rows
from pipeline.filters.length_bias import length_bias
from pipeline.mixing import mixing_report
from pipeline.pairs import build_pairs, finalize
from pipeline.schema import conform
from pipeline.signals.result import SignalResult
from pipeline.sources.batch import TABLES

SOURCE_KINDS = TABLES  # the canonical input tables: each is mined, or given its reason when not
# tables whose rows are independent, so the flow may mine them in slices
SLICEABLE = {"conversations", "edits"}


def miner(kind: str, cfg: CurateConfig):
    """The signal miner for a canonical table and its config section, or None when disabled
    (prompts have no implicit signal: only a generation recipe makes pairs from them)."""
    from pipeline.signals import conversations, edits, pairwise, ratings, ugc

    if kind == "prompts":
        return None
    section = {"conversations": cfg.signals.conversations, "ugc": cfg.signals.ugc,
               "edits": cfg.signals.edits, "judgments": cfg.signals.pairwise, "rated": cfg.signals.ratings}[kind]
    if not section.enabled:
        return None
    if kind == "rated":
        return lambda table: ratings.mine_ratings(table, section, cfg.sources.rated_score)
    fn = {"conversations": conversations.mine_conversations, "ugc": ugc.mine_ugc,
          "edits": edits.mine_edits, "judgments": pairwise.mine_pairwise}[kind]
    return lambda table: fn(table, section)


def mine_table(kind: str, table: pa.Table, cfg: CurateConfig) -> tuple[SignalResult, int]:
    """Mine one canonical table (or a slice of one): its signal's pairs, or why none; with the
    pid of the process that mined it (a Dask worker's, when the flow sends it there)."""
    run = miner(kind, cfg)
    return (run(table) if run else disabled(kind, table, cfg)), os.getpid()


def disabled(kind: str, table: pa.Table, cfg: CurateConfig) -> SignalResult:
    """Why a table no miner looks at made no pair. Prompts need a recipe that takes them, which
    then gives its own reason for each prompt it does not pair."""
    from pipeline.schema import from_rows

    if kind == "prompts":
        if any("prompts" in getattr(r, "prompts_from", ()) for r in cfg.recipes):
            return SignalResult()
        reason = "prompts: a prompt makes pairs only through a generation recipe (best_of_n, flr_mining)"
    else:
        reason = f"{kind}: signal disabled in the config"
    return SignalResult(unpaired=from_rows("unpaired", [{"record_id": r, "reason": reason}
                                                        for r in set(table["record_id"].to_pylist())]))


def combine(results: list[SignalResult]) -> SignalResult:
    return SignalResult(pairs=pa.concat_tables([r.pairs for r in results]) if results else SignalResult().pairs,
                        unpaired=pa.concat_tables([r.unpaired for r in results]) if results else SignalResult().unpaired,
                        signals=pa.concat_tables([r.signals for r in results]) if results else SignalResult().signals)


def model_runners(cfg: CurateConfig, cache_dir: Path | None):
    """One runner (one engine) per `models` endpoint for a whole run, sharing the request cache."""
    from pipeline.annotate.registry import Runners

    return Runners(cfg.models, cache_dir / "requests.sqlite" if cache_dir else None)


def select_pairs(raw: pa.Table, cfg: CurateConfig, cache_dir: Path | None,
                 runners=None, prior: Prior | None = None) -> tuple[pa.Table, pa.Table, dict]:
    """raw signal pairs -> (pairs, lineage, stats): ids, tie rule, filters, annotators (on the
    run's `runners`, or its own), length-bias and mixing reports. With the `prior` of an
    incremental run, pairs the parent decided are left out (their records go to
    `prior.repeated`) and the run-wide filters respect the parent's kept prompts."""
    cands = build_pairs(raw)
    if prior is not None and prior.version is not None:
        in_parent = prior.decided(cands.table["pair_id"])
        prior.repeated = repeated_rows(prior, cands.table.filter(pa.array(in_parent))["input_ids"])[0]
        cands = cands.subset(~in_parent)
    filter_stats = apply_filters(cands, cfg.filters, cache_dir, prior=prior)
    if cfg.annotate.annotators:  # model-based annotators run on what survived the cheap filters
        from pipeline.annotate.apply import annotate_candidates

        own = runners is None
        runners = model_runners(cfg, cache_dir) if own else runners
        try:
            filter_stats["annotation"] = annotate_candidates(cands, cfg.annotate, runners)
        finally:
            if own:
                runners.close()
    pairs, lineage = finalize(cands)
    funnel = {"raw_pairs": raw.num_rows, "unique_pairs": cands.table.num_rows}
    for name, passed, _ in cands.log:  # rows a filter did not see (null) were dropped before it
        funnel[f"after_{name}"] = int(pc.sum(pc.fill_null(passed, False)).as_py() or 0)
    stats = {"funnel": funnel, "length_bias": length_bias(pairs), **filter_stats,
             "pairs_by_signal": value_counts(pairs["signal"]),
             "mixing": mixing_report(lineage.filter(lineage["kept"]), cfg.mixing, cache_dir,
                                     lambda rows: pairs.take(pa.array(rows)))}
    return pairs, lineage, stats


def version_tables_and_manifest(batch, signals: SignalResult, pairs: pa.Table, lineage: pa.Table,
                                stats: dict, cfg: CurateConfig, flow_run_id: str | None,
                                prior: Prior | None = None) -> tuple[dict, dict]:
    """Everything a version holds: its tables, the ledger, and the manifest facts the store
    completes (version, parent, files) at commit time. The records of pairs an incremental run's
    parent already decided (`prior.repeated`) are accounted as filtered."""
    from pipeline.ledger import build_ledger

    unpaired = signals.unpaired
    if prior is not None and prior.repeated is not None:
        unpaired = pa.concat_tables([conform("unpaired", unpaired), conform("unpaired", prior.repeated)])
    ledger, summary = build_ledger(batch.records, batch.quarantine, lineage, unpaired)
    stats = dict(stats)
    counts = {"records": batch.records.num_rows, **{f"rows_{k}": batch.tables[k].num_rows for k in SOURCE_KINDS},
              "signal_turns": signals.signals.num_rows, **stats.pop("funnel")}
    manifest = manifest_facts(cfg, flow_run_id, batch.inputs, counts, {**stats, "sources": batch.stats}, summary)
    tables = {"pairs": pairs, "lineage": lineage, "quarantine": batch.quarantine, "ledger": ledger,
              "signals": signals.signals}
    return tables, manifest


def manifest_facts(cfg: CurateConfig, flow_run_id: str | None, inputs: list[dict], counts: dict, stats: dict,
                   ledger: dict | None = None) -> dict:
    """The facts a version's manifest holds besides what the store adds; with no `ledger`
    summary, the store computes it from ledger.parquet at commit."""
    return {"flow_run_id": flow_run_id, "config": cfg.run_config(), "config_hash": cfg.digest(),
            "code_version": code_version(), "inputs": inputs, "counts": counts, "ledger": ledger, "stats": stats}


@cache
def code_version() -> str:
    """Package version plus the git commit when running from a checkout (asked once per process:
    a run asks three times, and each `git` call costs about 6 ms)."""
    v = pkg_version("prefmill")
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+{sha}" if sha else v


def run_key(paths: list, dataset: str, cfg: CurateConfig, base: int | None = None) -> str:
    """What makes two runs the same run: dataset, config, code, each input's path, size and
    modification time (a file that changed makes a new run, never a resumed one), and the version
    an incremental run builds on. A missing file counts as such (the run quarantines it)."""
    files = [_file_facts(Path(p)) for p in paths]
    facts = json.dumps([dataset, cfg.digest(), code_version(), files] + ([base] if base is not None else []))
    return hashlib.sha256(facts.encode()).hexdigest()[:32]


def _file_facts(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return str(path.resolve()), None, None
    return str(path.resolve()), st.st_size, st.st_mtime_ns
