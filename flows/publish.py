"""After a commit: build the version's dashboard and publish Prefect artifacts for it (a summary
table and a link to the dashboard), so the Prefect UI shows each version at a glance. The version is
already durable here: a failure is a warning, never a failed run."""
from __future__ import annotations

import re
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from pipeline.store.layout import StoreError, VersionRef, dashboard_dir
from pipeline.store.manifest import LEDGER_KEYS


class NoUsableInput(RuntimeError):
    """No input record could be read: nothing to commit."""


@task(name="publish-version", cache_policy=NO_CACHE)
def publish(workspace: Path, manifest: dict, build: bool):
    return publish_version(workspace, manifest, build)


def artifact_key(dataset: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"prefmill-{dataset.lower()}-{what}").strip("-")


def summary_rows(manifest: dict, dashboard: Path | None) -> list[dict]:
    ledger, stats = manifest["ledger"], manifest["stats"]
    rows = [{"metric": "version", "value": f"{manifest['dataset']}@{manifest['version']}"},
            {"metric": "parent", "value": str(manifest.get("parent") or "none")}]
    rows += [{"metric": k, "value": str(ledger[k])} for k in LEDGER_KEYS]
    rows += [{"metric": f"pairs · {k}", "value": str(v)} for k, v in sorted(stats.get("pairs_by_signal", {}).items())]
    rows += [{"metric": "warning", "value": w} for w in stats.get("mixing", {}).get("warnings", [])]
    rows.append({"metric": "dashboard", "value": str(dashboard) if dashboard else "not built"})
    return rows


def publish_version(workspace: Path, manifest: dict, build: bool = True) -> Path | None:
    """Build the dashboard (if `build`) and publish the artifacts; returns the dashboard's path."""
    log = get_run_logger()
    name, version = manifest["dataset"], manifest["version"]
    path = None
    if build:
        from dashboards.build import build_dashboard  # plotly & jinja2: only runs that build one pay the import

        try:
            path = build_dashboard(workspace, VersionRef(name, version), dashboard_dir(workspace, name, version))
        except (StoreError, OSError) as exc:
            log.warning("version %s@%s committed, but its dashboard was not built: %s", name, version, exc)
    try:
        create_table_artifact(summary_rows(manifest, path), key=artifact_key(name, "summary"),
                              description=f"{name}@{version}: ledger and pairs by signal")
        if path:
            create_link_artifact(path.as_uri(), link_text=f"{name}@{version} dashboard",
                                 key=artifact_key(name, "dashboard"),
                                 description=f"Quality dashboard of {name}@{version} (self-contained HTML)")
    except Exception as exc:  # whatever the Prefect API answers, the committed version stands
        log.warning("version %s@%s committed, but its Prefect artifacts were not published: %s", name, version, exc)
    if path:
        log.info("dashboard: %s", path)
    return path
