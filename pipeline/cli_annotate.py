"""`prefmill eval-annotators`: measure annotators against human-labelled pairs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.cli import AsJson, Workspace, _show, err, fail, out, workspace_dir


def eval_annotators(
        files: Annotated[list[Path], typer.Argument(help="Human-labelled pairs: PandaLM, pairwise, LAMP or WQRM rankings")],
        annotator: Annotated[Optional[list[str]], typer.Option("--annotator", "-a", help="Only these annotators (repeatable)")] = None,
        config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML whose `annotate` section defines the annotators [default: prefmill's CPU set]")] = None,
        limit: Annotated[Optional[int], typer.Option("--limit", help="At most N pairs per file (a seeded sample)")] = None,
        backend: Annotated[str, typer.Option("--backend", help="Backend of the default CPU set: vllm | transformers")] = "vllm",
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the request cache (cold cost)")] = False,
        workspace: Workspace = None, as_json: AsJson = False):
    """Per annotator and file: accuracy vs the human majority, Cohen's kappa, coverage, flip rate, seconds per pair."""
    import pyarrow as pa

    from pipeline.annotate.defaults import cpu_annotators, cpu_models
    from pipeline.annotate.evaluate import evaluate, human_items
    from pipeline.annotate.registry import AnnotatorConfigError, Runners, build_annotators
    from pipeline.config import ConfigError, SourcesConfig, load_config
    from pipeline.models import ModelError
    from pipeline.sources import read_file

    ws = workspace_dir(workspace)
    try:
        cfg = load_config(config) if config else None
    except ConfigError as exc:
        fail(str(exc), 2)
    if cfg is not None and cfg.annotate.annotators:
        annotate, models = cfg.annotate, cfg.models
    else:
        annotate, models = cpu_annotators(ws), cpu_models(backend)
    datasets = []
    for path in files:
        batch = read_file(path, SourcesConfig(), path.name)
        items = human_items(batch.tables["judgments"], limit)
        err.print(f"{path.name}: {items.num_rows} judged pairs "
                  f"({batch.tables['judgments'].num_rows} judgments, {batch.quarantine.num_rows} quarantined)")
        if items.num_rows:
            datasets.append((path.name, items))
    if not datasets:
        fail("no human-labelled pairs in the given files", 2)
    runners = Runners(models, None if no_cache else ws / "cache" / "requests.sqlite")
    try:
        annotators = build_annotators(annotate.annotators, runners, annotator)
    except (AnnotatorConfigError, ModelError) as exc:
        fail(str(exc), 2)
    rows = []
    try:
        for name, items in datasets:
            for a in annotators:
                with err.status(f"{a.name} on {name} ({items.num_rows} pairs)"):
                    rows += [{"file": name, **r} for r in evaluate([a], items)]
    finally:
        runners.close()
    short = {"seconds_per_pair": "s/pair", "first_position_win_rate": "1st_pos", "flip_rate": "flips",
             "coverage": "cover", "file": "file", "annotator": "annotator", "items": "pairs", "accuracy": "acc",
             "acc_p": "acc_p", "kappa": "kappa"}
    shown = [{short[k]: (round(v, 2) if isinstance(v, float) else Path(v).stem if k == "file" else v)
              for k, v in r.items() if k in short} for r in rows]
    _show(pa.Table.from_pylist(shown), False, title="annotators vs humans")
    out.print("models: " + "; ".join(f"{a.name}: {_models(a.describe())}" for a in annotators))
    if as_json:
        print(json.dumps({"results": rows, "annotators": [a.describe() for a in annotators]}))


def _models(described: dict) -> str:
    if "model" in described:
        return described["model"]
    if "strong" in described:
        return f"{described['strong']} / {described['weak']}"
    return ", ".join(m.get("name", "?") for m in described.get("members", []))
