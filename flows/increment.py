"""What a curate run reads: every input (a full run), or, for an incremental run, only what the
dataset's latest version has not seen (pipeline/incremental.py). Shared by both branches of the
flow."""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import incremental as increments
from pipeline.config import CurateConfig
from pipeline.incremental import Plan
from pipeline.sources import unique_labels


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
