"""The `curate` Prefect flow: read inputs (a task per file) -> mine signals (a task per table,
sliced into batches where rows are independent) -> generation recipes (a task each, sharing one
engine per model with the annotators) -> pairs, filters and annotators -> ledger -> commit a
version -> its dashboard and Prefect artifacts. When every input is a rated file (and no recipe or
model annotator is set) the run is streamed instead (flows/streamed.py). Thin by rule: the work
lives in pipeline/ stages."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.increment import plan_run
from flows.publish import NoUsableInput, publish
from flows.streamed import curate_streamed
from pipeline import incremental as increments
from pipeline.config import CurateConfig
from pipeline.filters.prior import Prior, index_part
from pipeline.curation import (SLICEABLE, SOURCE_KINDS, combine, disabled, miner, model_runners, select_pairs,
                               version_tables_and_manifest)
from pipeline.recipes import RecipeContext, run_recipe
from pipeline.sources import NoMatch, SourceBatch, expand_inputs, merge, read_file
from pipeline.streamed import streamable
from pipeline.store import commit_version
from pipeline.store.versions import read_manifest
from pipeline.store.manifest import LEDGER_KEYS



@task(name="read-source", cache_policy=NO_CACHE)
def read_source(path: str, label: str, cfg: CurateConfig) -> SourceBatch:
    return read_file(path, cfg.sources, label)


@task(name="mine-signals", cache_policy=NO_CACHE, task_run_name="mine-{kind}-{part}")
def mine(kind: str, part: int, table, cfg: CurateConfig):
    run = miner(kind, cfg)
    return run(table) if run else disabled(kind, table, cfg)


@task(name="run-recipe", cache_policy=NO_CACHE, task_run_name="recipe-{name}")
def recipe(name: str, spec, tables: dict, ctx: RecipeContext):
    return run_recipe(spec, tables, ctx)


@task(name="select-pairs", cache_policy=NO_CACHE)
def select(raw, cfg: CurateConfig, cache_dir: Path, runners, prior: Prior):
    return select_pairs(raw, cfg, cache_dir, runners, prior)


@task(name="ledger-and-manifest", cache_policy=NO_CACHE)
def account(batch, signals, pairs, lineage, stats: dict, cfg: CurateConfig, prior: Prior):
    return version_tables_and_manifest(batch, signals, pairs, lineage, stats, cfg,
                                       str(flow_run.id) if flow_run.id else None, prior)


@task(name="commit-version", cache_policy=NO_CACHE)
def commit(workspace: Path, dataset: str, tables: dict, manifest: dict, base: int | None) -> dict:
    return commit_version(workspace, dataset, tables, manifest, base)


@flow(name="curate")
def curate(inputs: list[str], dataset: str, workspace: str, config: dict | None = None,
           incremental: bool = False, dask_address: str | None = None) -> dict:
    """Curate `inputs` into a new version of `dataset` under `workspace`; returns its manifest.
    `incremental`: build on the latest version, reading only what it has not seen.
    `dask_address`: a Dask scheduler whose workers compute the blocks of a streamed run."""
    log = get_run_logger()
    cfg = CurateConfig.model_validate(config or {})
    ws = Path(workspace)
    try:
        inputs = expand_inputs(inputs)
    except NoMatch as exc:
        raise NoUsableInput(str(exc)) from exc
    if streamable(inputs, cfg):
        return curate_streamed(inputs, dataset, ws, cfg, incremental, dask_address)
    if dask_address:
        log.warning("Dask computes the blocks of streamed (rated-file) runs only; this run uses local threads")
    todo = plan_run(ws, dataset, inputs, cfg, incremental, appendable=False)
    if todo.base is not None and not todo.read:
        log.info("no new input since %s@%d: no new version", dataset, todo.base)
        return read_manifest(ws, f"{dataset}@{todo.base}")
    futures = [read_source.submit(p, label, cfg) for p, label, _ in todo.read]
    batch = merge([f.result() for f in futures])
    valid = sum(batch.tables[k].num_rows for k in SOURCE_KINDS)
    if valid == 0 and todo.base is None:
        raise NoUsableInput(f"no input record could be read from {len(inputs)} file(s); "
                            f"{batch.quarantine.num_rows} quarantined")
    log.info("read %d records from %d files (%d quarantined)", batch.records.num_rows, len(inputs),
             batch.quarantine.num_rows)

    mined = []
    for kind in SOURCE_KINDS:
        table = batch.tables[kind]
        if table.num_rows == 0:
            continue
        step = cfg.batch_size if kind in SLICEABLE else table.num_rows
        mined += [mine.submit(kind, i // step, table.slice(i, step), cfg)
                  for i in range(0, table.num_rows, step)]
    results = [m.result() for m in mined]

    runners = model_runners(cfg, ws / "cache")
    try:  # recipes run one after another: they share the engines (and the CPU or GPU)
        ctx = RecipeContext(runners, cfg.policy, cfg.signals.conversations, log.info)
        made = {spec.name: recipe(spec.name, spec, batch.tables, ctx) for spec in cfg.recipes}
        signals = combine(results + [m.result for m in made.values()])
        pairs, lineage, stats = select(signals.pairs, cfg, ws / "cache", runners, todo.prior)
    finally:
        runners.close()
    if made:
        stats["recipes"] = {spec.name: {"type": spec.type, **made[spec.name].stats} for spec in cfg.recipes}
    tables, manifest = account(batch, signals, pairs, lineage, stats, cfg, todo.prior)
    committed = commit(ws, dataset, tables, todo.finish(manifest), todo.base)
    increments.save_index(ws, dataset, committed["version"], todo.prior, index_part(todo.prior, pairs["prompt_id"]))
    log.info("ledger: %s", {k: committed["ledger"][k] for k in LEDGER_KEYS})
    publish(ws, committed, cfg.dashboard.enabled)
    return committed
