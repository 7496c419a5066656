"""What a curate run reads: every input (a full run), or, for an incremental run, only what the
dataset's latest version has not seen (pipeline/incremental.py); whether it must run at all; its
staging folder and Dask client; and what follows its commit. Shared by both branches of the flow."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.publish import publish
from pipeline import incremental as increments
from pipeline.config import CurateConfig
from pipeline.curation import run_key
from pipeline.incremental import Plan
from pipeline.sources import unique_labels
from pipeline.store.commit import committed_run, discard, run_dir, stage
from pipeline.store.manifest import LEDGER_KEYS
from pipeline.store.versions import read_manifest


@task(name="plan-increment", cache_policy=NO_CACHE)
def plan_increment(ws: Path, dataset: str, inputs: list[str], labels: list[str], cfg: CurateConfig,
                   streamed: bool) -> Plan:
    return increments.plan(ws, dataset, inputs, labels, cfg, streamed)


def plan_run(ws: Path, dataset: str, inputs: list[str], cfg: CurateConfig, incremental: bool,
             streamed: bool) -> Plan:
    labels = unique_labels([Path(p) for p in inputs])
    if not incremental:
        return increments.full(inputs, labels)
    todo = plan_increment(ws, dataset, inputs, labels, cfg, streamed)
    if todo.why_full:
        get_run_logger().warning("not incremental: %s; rebuilding in full", todo.why_full)
    return todo


def begin(ws: Path, dataset: str, inputs: list[str], cfg: CurateConfig, incremental: bool,
          streamed: bool) -> tuple[Plan, str, dict | None]:
    """The run's plan and key, and the manifest to return instead of running, if any: the version
    a run with this key committed (a rerun after a kill that came after the commit; its staging
    folder, if left, is removed), or the parent when an incremental run finds nothing new."""
    log = get_run_logger()
    todo = plan_run(ws, dataset, inputs, cfg, incremental, streamed)
    key = run_key(inputs, dataset, cfg, todo.base)
    done = committed_run(ws, dataset, key)
    if done is not None:
        log.info("%s@%d was committed by a run of the same inputs and config", dataset, done["version"])
        shutil.rmtree(run_dir(ws, dataset, key), ignore_errors=True)  # an in-memory run's task results
        publish(ws, done, cfg.dashboard.enabled)
        return todo, key, done
    if todo.base is not None and not todo.read:
        log.info("no new input since %s@%d: no new version", dataset, todo.base)
        return todo, key, read_manifest(ws, f"{dataset}@{todo.base}")
    return todo, key, None


def after_commit(ws: Path, committed: dict, todo: Plan, prompt_index, cfg: CurateConfig) -> dict:
    """Save the version's prompt index (its parent's parts and `prompt_index`, the run's own),
    log its ledger, publish its dashboard and artifacts."""
    increments.save_index(ws, committed["dataset"], committed["version"], todo.prior, prompt_index)
    get_run_logger().info("ledger: %s", {k: committed["ledger"][k] for k in LEDGER_KEYS})
    publish(ws, committed, cfg.dashboard.enabled)
    return committed


def dask_client(address: str):
    from distributed import Client  # imported only when asked for: it costs about a second

    return Client(address, timeout="30s")


@contextmanager
def staged(ws: Path, dataset: str, key: str, dask_address: str | None):
    """(the run's own staging folder, removed if the run fails; a Dask client when asked for,
    closed at the end)."""
    staging = stage(ws, dataset, key)
    client = dask_client(dask_address) if dask_address else None
    try:
        yield staging, client
    except BaseException:
        discard(staging)
        raise
    finally:
        if client is not None:
            client.close()
