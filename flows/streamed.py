"""The streamed branch of the curate flow, for runs whose inputs are all rated files: plan (an
incremental run reads only what the parent has not seen) -> a task per file reads, pairs and
filters it block by block into the version's staging folder (on Dask workers when asked) ->
run-wide filters -> write -> commit -> publish. Thin by rule: the work lives in
pipeline/streamed.py and pipeline/incremental.py."""
from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.increment import plan_run
from flows.publish import NoUsableInput, publish
from pipeline import incremental as increments
from pipeline.config import CurateConfig
from pipeline.store.commit import commit_staged, committed_run, discard, stage
from pipeline.store.manifest import LEDGER_KEYS
from pipeline.store.versions import read_manifest
from pipeline.curation import run_key
from pipeline.streamed import StreamedRun

PROGRESS_SECONDS = 5.0


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


def dask_client(address: str):
    from distributed import Client  # imported only when asked for: it costs about a second

    return Client(address, timeout="30s")


def curate_streamed(inputs: list[str], dataset: str, ws: Path, cfg: CurateConfig, increment: bool,
                    dask_address: str | None) -> dict:
    """Rated files only: streamed block by block in bounded memory (pipeline/streamed.py). A run
    killed before its commit resumes from its staging folder; one killed after it returns the
    version it committed. An incremental run reads only what the latest version has not seen."""
    log = get_run_logger()
    todo = plan_run(ws, dataset, inputs, cfg, increment, streamed=True)
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
        manifest = {**todo.finish(write_streamed(run)), "run_key": key}
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
