"""`prefmill dashboard`: one version's quality dashboard as a self-contained HTML page."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.cli import AsJson, Workspace, fail, out, workspace_dir


def dashboard(ref: Annotated[str, typer.Argument(help="NAME@VERSION (NAME alone = latest)")],
              compare: Annotated[Optional[str], typer.Option("--compare", help="NAME@OTHER: show what changed from it")] = None,
              out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder [default: WORKSPACE/dashboards/NAME/vN]")] = None,
              workspace: Workspace = None, as_json: AsJson = False):
    """Write a version's dashboard (ledger funnel, pairs, scores, length bias, annotators, duplicates,
    quarantine, sample pairs) to OUT/index.html; it opens offline in any browser."""
    from dashboards.build import build_dashboard
    from pipeline.store.layout import StoreError, dashboard_dir, resolve_ref

    ws = workspace_dir(workspace)
    try:
        this, _ = resolve_ref(ws, ref)
        path = build_dashboard(ws, this, out_dir or dashboard_dir(ws, this.dataset, this.version), compare=compare)
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"dataset": this.dataset, "version": this.version, "compare": compare, "path": str(path)}))
    else:
        out.print(f"dashboard of {this}: {path}")
