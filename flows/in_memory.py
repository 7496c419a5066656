"""The in-memory branch of the curate flow, for runs with any input other than rated files: plan
(an incremental run reads only new files) -> read (a task per file) -> mine signals (a task per
table, sliced into batches where rows are independent) -> generation recipes (a task each, sharing
one engine per model with the annotators) -> pairs, filters and annotators -> ledger -> commit ->
publish. Thin by rule: the work lives in pipeline/ stages.

Resume: every task up to the pairs and filters persists its result (Prefect's result persistence) in the
run's own staging folder (`.tmp-run-KEY`, see `run_key`), keyed by its task-run name. A rerun of a
killed run loads what finished (the task run is `Cached`) and computes the rest; model requests
are resumed by the request cache besides. The folder goes once the version is committed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy
from prefect.runtime import flow_run

from flows.increment import after_commit, begin, staged
from flows.publish import NoUsableInput
from pipeline import incremental as increments, source_ids
from pipeline.config import CurateConfig
from pipeline.curation import (SLICEABLE, SOURCE_KINDS, combine, mine_table, model_runners, select_pairs,
                               version_tables_and_manifest)
from pipeline.filters.prior import Prior, index_part
from pipeline.recipes import RecipeContext, run_recipe
from pipeline.sources import SourceBatch, merge, read_file
from pipeline.store import commit_version
from pipeline.store.commit import discard

RESULTS = "results"  # the staging folder's subfolders: the persisted task results,
VERSION = "version"  # and the version being committed (renamed to vN)


@task(name="read-source", cache_policy=NO_CACHE, task_run_name="read-{label}")
def read_source(path: str, label: str, cfg: CurateConfig) -> SourceBatch:
    return read_file(path, cfg.sources, label)


@task(name="mine-signals", cache_policy=NO_CACHE, task_run_name="mine-{kind}-{part}")
def mine(kind: str, part: int, table: pa.Table, cfg: CurateConfig, client=None):
    """-> (signals, pid): mined here, or on a Dask worker when the run has a `client`."""
    if client is None:
        return mine_table(kind, table, cfg)
    # a slice pickles with its whole table's buffers: ship a compact copy of its rows only
    return client.submit(mine_table, kind, table.take(np.arange(table.num_rows)), cfg, pure=False).result()


@task(name="run-recipe", cache_policy=NO_CACHE, task_run_name="recipe-{name}")
def recipe(name: str, spec, tables: dict, ctx: RecipeContext):
    return run_recipe(spec, tables, ctx)


@task(name="select-pairs", cache_policy=NO_CACHE, task_run_name="select-pairs")
def select(raw, cfg: CurateConfig, cache_dir: Path, runners, prior: Prior):
    """-> pairs, lineage, stats, and what selecting filled in `prior` (the records of pairs the
    parent decided, the exact-dedup keys of the run's prompts), kept in the result so that a
    resumed run has them without selecting again."""
    return (*select_pairs(raw, cfg, cache_dir, runners, prior), (prior.repeated, prior.seen))


@task(name="ledger-and-manifest", cache_policy=NO_CACHE, task_run_name="ledger-and-manifest")
def account(batch, signals, pairs, lineage, stats: dict, cfg: CurateConfig, prior: Prior):
    return version_tables_and_manifest(batch, signals, pairs, lineage, stats, cfg,
                                       str(flow_run.id) if flow_run.id else None, prior)


@task(name="commit-version", cache_policy=NO_CACHE)
def commit(workspace: Path, dataset: str, tables: dict, manifest: dict, base: int | None, into: Path) -> dict:
    return commit_version(workspace, dataset, tables, manifest, base, into)


def resumable(t, staging: Path):
    """`t` with its results persisted under `staging`, keyed by the task-run name (unique within
    a run; the folder is the run's own)."""
    return t.with_options(cache_policy=CacheKeyFnPolicy(cache_key_fn=lambda ctx, _: ctx.task_run.name),
                          result_storage=staging / RESULTS, persist_result=True)


def curate_in_memory(inputs: list[str], dataset: str, ws: Path, cfg: CurateConfig, incremental: bool,
                     dask_address: str | None) -> dict:
    todo, key, done = begin(ws, dataset, inputs, cfg, incremental, streamed=False)
    if done is not None:
        return done
    with staged(ws, dataset, key, dask_address) as (staging, client):
        tables, manifest, ids = _tables(inputs, ws, cfg, todo, staging, client)
        committed = commit(ws, dataset, tables, {**todo.finish(manifest), "run_key": key}, todo.base,
                           staging / VERSION)
    discard(staging)  # the task results: the version is committed
    increments.save_parts(source_ids.ids_dir(ws, dataset, committed["version"]), todo.source_ids, ids)
    return after_commit(ws, committed, todo, index_part(todo.prior, tables["pairs"]["prompt_id"]), cfg)


def _tables(inputs: list[str], ws: Path, cfg: CurateConfig, todo, staging: Path, client) -> tuple[dict, dict, pa.Table]:
    """The version's tables and manifest, and its records' source ids; every task resumable from
    `staging`, the mining on the workers of a Dask `client` when given."""
    log = get_run_logger()
    reused = sorted(p.name for p in (staging / RESULTS).glob("*"))
    if reused:
        log.info("resuming a killed run: %d task results already done", len(reused))
    read = resumable(read_source, staging)
    files = [f.result() for f in [read.submit(p, label, cfg) for p, label, _ in todo.read]]
    # with the parent's ids and accepted-answer links (an increment), the run-wide source rules span both
    batch = merge(files, source_ids.in_parent(todo.source_ids, files, todo.prior.where) if todo.source_ids else None)
    valid = sum(batch.tables[k].num_rows for k in SOURCE_KINDS)
    if valid == 0 and todo.base is None:
        raise NoUsableInput(f"no input record could be read from {len(inputs)} file(s); "
                            f"{batch.quarantine.num_rows} quarantined")
    log.info("read %d records from %d files (%d quarantined)", batch.records.num_rows, len(inputs),
             batch.quarantine.num_rows)

    mined, mine_batch = [], resumable(mine, staging)
    for kind in SOURCE_KINDS:
        table = batch.tables[kind]
        if table.num_rows == 0:
            continue
        step = cfg.batch_size if kind in SLICEABLE else table.num_rows
        mined += [mine_batch.submit(kind, i // step, table.slice(i, step), cfg, client)
                  for i in range(0, table.num_rows, step)]
    results, pids = zip(*[m.result() for m in mined]) if mined else ((), ())

    runners = model_runners(cfg, ws / "cache")
    try:  # recipes run one after another: they share the engines (and the CPU or GPU)
        ctx = RecipeContext(runners, cfg.policy, cfg.signals.conversations, log.info)
        made = {spec.name: resumable(recipe, staging)(spec.name, spec, batch.tables, ctx) for spec in cfg.recipes}
        signals = combine([*results, *(m.result for m in made.values())])
        pairs, lineage, stats, (todo.prior.repeated, todo.prior.seen) = resumable(select, staging)(
            signals.pairs, cfg, ws / "cache", runners, todo.prior)
    finally:
        runners.close()
    if made:
        stats["recipes"] = {spec.name: {"type": spec.type, **made[spec.name].stats} for spec in cfg.recipes}
    stats["resume"] = {"tasks": len(list((staging / RESULTS).glob("*"))), "reused": len(reused)}
    if client is not None:  # provenance: where the tables were mined
        stats["dask"] = {"scheduler": client.scheduler.address, "mined": len(pids), "worker_pids": sorted(set(pids))}
    return (*account(batch, signals, pairs, lineage, stats, cfg, todo.prior), source_ids.of_batch(batch))
