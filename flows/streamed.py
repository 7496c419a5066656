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

from flows.increment import after_commit, begin, staged
from flows.publish import NoUsableInput
from pipeline.config import CurateConfig
from pipeline.store.commit import commit_staged
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


def curate_streamed(inputs: list[str], dataset: str, ws: Path, cfg: CurateConfig, increment: bool,
                    dask_address: str | None) -> dict:
    """Rated files only: streamed block by block in bounded memory (pipeline/streamed.py). A run
    killed before its commit resumes from its staging folder; one killed after it returns the
    version it committed. An incremental run reads only what the latest version has not seen."""
    log = get_run_logger()
    todo, key, done = begin(ws, dataset, inputs, cfg, increment, streamed=True)
    if done is not None:
        return done
    with staged(ws, dataset, key, dask_address) as (staging, client):
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
    committed = commit_staged_task(ws, dataset, staging, manifest, todo.base)
    return after_commit(ws, committed, todo, run.index, cfg)
