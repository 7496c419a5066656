"""The `curate` Prefect flow: read inputs (a task per file) -> mine signals (a task per table,
sliced into batches where rows are independent) -> generation recipes (a task each, sharing one
engine per model with the annotators) -> pairs, filters and annotators -> ledger -> commit a
version -> its dashboard and Prefect artifacts. When every input is a rated file (and no recipe or
model annotator is set) the run is streamed instead: a task per file reads, pairs and filters it
block by block into the version's staging folder, then run-wide filters, write, commit, publish.
Thin by rule: the work lives in pipeline/ stages."""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.publish import publish_version
from pipeline.config import CurateConfig
from pipeline.curation import (SLICEABLE, SOURCE_KINDS, combine, disabled, miner, model_runners, select_pairs,
                               version_tables_and_manifest)
from pipeline.recipes import RecipeContext, run_recipe
from pipeline.sources import NoMatch, SourceBatch, expand_inputs, merge, read_file, unique_labels
from pipeline import incremental as increments
from pipeline.incremental import Plan
from pipeline.streamed import StreamedRun, run_key, streamable
from pipeline.store import commit_version
from pipeline.store.commit import commit_staged, committed_run, discard, stage
from pipeline.store.versions import read_manifest
from pipeline.store.manifest import LEDGER_KEYS


PROGRESS_SECONDS = 5.0


class NoUsableInput(RuntimeError):
    """No input record could be read: nothing to commit."""


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
def select(raw, cfg: CurateConfig, cache_dir: Path, runners):
    return select_pairs(raw, cfg, cache_dir, runners)


@task(name="ledger-and-manifest", cache_policy=NO_CACHE)
def account(batch, signals, pairs, lineage, stats: dict, cfg: CurateConfig):
    return version_tables_and_manifest(batch, signals, pairs, lineage, stats, cfg,
                                       str(flow_run.id) if flow_run.id else None)


@task(name="commit-version", cache_policy=NO_CACHE)
def commit(workspace: Path, dataset: str, tables: dict, manifest: dict) -> dict:
    return commit_version(workspace, dataset, tables, manifest)


@task(name="publish-version", cache_policy=NO_CACHE)
def publish(workspace: Path, manifest: dict, build: bool):
    return publish_version(workspace, manifest, build)


@task(name="stream-rated-file", cache_policy=NO_CACHE, task_run_name="stream-{label}")
def stream_file(run, path: str, label: str, start=None) -> None:
    log, last = get_run_logger(), [0.0]

    def progress(message: str) -> None:  # a line every few seconds, not one per block
        if time.monotonic() - last[0] >= PROGRESS_SECONDS:
            last[0] = time.monotonic()
            log.info(message)

    run.add_file(Path(path), label, progress, start)
    log.info("%s read: %d records in the run so far, %d raw pairs", label, run.counts["records"],
             run.counts["raw_pairs"])


@task(name="run-wide-filters", cache_policy=NO_CACHE)
def run_wide(run) -> dict:
    return run.select()


@task(name="write-version", cache_policy=NO_CACHE)
def write_streamed(run) -> dict:
    return run.write(str(flow_run.id) if flow_run.id else None)


@task(name="commit-version", cache_policy=NO_CACHE, task_run_name="commit-staged-version")
def commit_staged_task(workspace: Path, dataset: str, staging: Path, manifest: dict, base: int | None) -> dict:
    return commit_staged(workspace, dataset, staging, manifest, base)


@task(name="plan-increment", cache_policy=NO_CACHE)
def plan_increment(ws: Path, dataset: str, inputs: list[str], labels: list[str], cfg: CurateConfig) -> Plan:
    return increments.plan(ws, dataset, inputs, labels, cfg)


def dask_client(address: str):
    from distributed import Client  # imported only when asked for: it costs about a second

    return Client(address, timeout="30s")


def curate_streamed(inputs: list[str], dataset: str, ws: Path, cfg: CurateConfig, increment: bool,
                    dask_address: str | None) -> dict:
    """Rated files only: streamed block by block in bounded memory (pipeline/streamed.py). A run
    killed before its commit resumes from its staging folder; one killed after it returns the
    version it committed. An incremental run reads only what the latest version has not seen."""
    log = get_run_logger()
    labels = unique_labels([Path(p) for p in inputs])
    todo = plan_increment(ws, dataset, inputs, labels, cfg) if increment else increments.full(inputs, labels)
    if increment and todo.why_full:
        log.warning("not incremental: %s; rebuilding in full", todo.why_full)
    key = run_key(inputs, dataset, cfg, todo.base)
    done = committed_run(ws, dataset, key)
    if done is not None:
        log.info("%s@%d was committed by a run of the same inputs and config", dataset, done["version"])
        publish(ws, done, cfg.dashboard.enabled)
        return done
    if todo.base is not None and not todo.read:
        log.info("no new input since %s@%d: no new version", dataset, todo.base)
        return read_manifest(ws, f"{dataset}@{todo.base}")
    staging = stage(ws, dataset, key)
    client = dask_client(dask_address) if dask_address else None
    try:
        run = StreamedRun(staging, cfg, ws / "cache", todo.prior, client)
        if run.finished:
            log.info("resuming a killed run: %d blocks already done", len(run.finished))
        for path, label, start in todo.read:
            stream_file(run, path, label, start)
        if run.counts["rows_rated"] == 0 and todo.base is None:
            raise NoUsableInput(f"no input record could be read from {len(inputs)} file(s); "
                                f"{run.counts['records']} quarantined")
        run_wide(run)
        facts = write_streamed(run)
        manifest = {**facts, "inputs": todo.inputs(facts["inputs"]), "run_key": key,
                    "stats": {**facts["stats"], "increment": todo.report()}}
    except BaseException:
        discard(staging)
        raise
    finally:
        if client is not None:
            client.close()
    committed = commit_staged_task(ws, dataset, staging, manifest, todo.base)
    increments.save_index(ws, dataset, committed["version"], todo.prior, run.index)
    log.info("ledger: %s", {k: committed["ledger"][k] for k in LEDGER_KEYS})
    publish(ws, committed, cfg.dashboard.enabled)
    return committed


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
    if incremental:
        log.warning("not incremental: only runs whose inputs are all rated files build on a parent yet; "
                    "rebuilding in full")
    futures = [read_source.submit(p, label, cfg) for p, label in zip(inputs, unique_labels([Path(p) for p in inputs]))]
    batch = merge([f.result() for f in futures])
    valid = sum(batch.tables[k].num_rows for k in SOURCE_KINDS)
    if valid == 0:
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
        pairs, lineage, stats = select(signals.pairs, cfg, ws / "cache", runners)
    finally:
        runners.close()
    if made:
        stats["recipes"] = {spec.name: {"type": spec.type, **made[spec.name].stats} for spec in cfg.recipes}
    tables, manifest = account(batch, signals, pairs, lineage, stats, cfg)
    log.info("ledger: %s", {k: manifest["ledger"][k] for k in LEDGER_KEYS})
    committed = commit(ws, dataset, tables, manifest)
    publish(ws, committed, cfg.dashboard.enabled)
    return committed
