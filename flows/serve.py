"""`prefmill serve`: the config's `schedules` become Prefect deployments of the curate flow, each
with its cron schedule, and this process serves them (a Prefect runner) until it is stopped. The
Prefect server at PREFECT_API_URL creates the scheduled runs; the runner executes each one in a
subprocess, so one failed run does not stop the next."""
from __future__ import annotations

from pathlib import Path

from prefect import serve
from prefect.deployments.runner import EntrypointType
from prefect.schedules import Cron

from flows.curate import curate
from pipeline.config import CurateConfig


def deployments(cfg: CurateConfig, workspace: Path) -> list:
    """One deployment per schedule; an invalid cron or timezone raises ValueError naming it."""
    out = []
    for spec in cfg.schedules:
        try:
            schedule = Cron(spec.cron, timezone=spec.timezone)
        except ValueError as exc:
            raise ValueError(f"schedule {spec.name!r}: {exc}") from exc
        out.append(curate.to_deployment(
            name=spec.name, schedule=schedule, entrypoint_type=EntrypointType.MODULE_PATH,
            parameters={"inputs": spec.inputs, "dataset": spec.dataset, "workspace": str(workspace),
                        "config": cfg.run_config(), "incremental": spec.incremental,
                        "dask_address": spec.dask_address},
            description=f"prefmill curate -d {spec.dataset} {' '.join(spec.inputs)} ({spec.cron} {spec.timezone})"))
    return out


def serve_schedules(served: list, limit: int | None = None) -> None:
    serve(*served, limit=limit)
