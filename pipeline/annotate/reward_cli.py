"""`prefmill rm`: train reward-model ensemble members from pairs Parquet files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

rm_app = typer.Typer(no_args_is_help=True, help="Reward-model ensemble members (train on CPU from pairs).")
out = Console()
err = Console(stderr=True)


@rm_app.callback()
def rm() -> None:
    """Reward-model ensemble members (train on CPU from pairs)."""  # keeps `train` a sub-command


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def read_pairs(paths: list[Path]):
    """The prompt / chosen / rejected columns of every file, typed as in schemas/pairs.yaml."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.annotate.reward_train import PAIR_COLUMNS
    from pipeline.schema import schema

    target = pa.schema([schema("pairs").field(c) for c in PAIR_COLUMNS])
    tables = []
    for path in paths:
        if not path.is_file():
            _fail(f"{path}: no such file")
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            _fail(f"{path}: not a Parquet file ({exc})")
        missing = [c for c in PAIR_COLUMNS if c not in table.column_names]
        if missing:
            _fail(f"{path}: a pairs table needs columns {list(PAIR_COLUMNS)}; missing {missing}")
        try:
            tables.append(table.select(PAIR_COLUMNS).cast(target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            _fail(f"{path}: prompt / chosen / rejected are not message lists ({exc})")
    return pa.concat_tables(tables)


@rm_app.command("train")
def train(inputs: Annotated[list[Path], typer.Argument(help="Parquet files holding a pairs table")],
          out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the members (one sub-folder each)")],
          encoders: Annotated[list[str], typer.Option(
              "--encoder", help="all-MiniLM-L6-v2 | SmolLM2-135M-Instruct | a local folder; repeat for several")] = ["all-MiniLM-L6-v2"],
          seeds: Annotated[list[int], typer.Option("--seed", help="Repeat for several members")] = [0],
          max_pairs: Annotated[int, typer.Option("--max-pairs", help="Pairs drawn per member (CPU budget)")] = 2000,
          holdout: Annotated[float, typer.Option("--holdout", help="Share of prompts held out")] = 0.2,
          max_length: Annotated[int, typer.Option("--max-length", help="Token limit of LM encoders")] = 1024,
          workspace: Annotated[Optional[Path], typer.Option(
              "--workspace", "-w", help="Workspace (its cache/ keeps embeddings) [default: $PREFMILL_WORKSPACE or ./data/workspace]")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False):
    """Train one member per (encoder, seed) under OUT, named like minilm-s0."""
    from pipeline.annotate.reward_train import encoder_kind, member_dirname, train_member
    from pipeline.cli import workspace_dir

    pairs = read_pairs(inputs)
    for encoder in encoders:
        try:
            encoder_kind(encoder)
        except ValueError as exc:
            _fail(str(exc))
    members = []
    for encoder in encoders:
        for seed in seeds:
            try:
                members.append(train_member(pairs, out_dir / member_dirname(encoder, seed), encoder, seed,
                                            max_length=max_length, holdout=holdout, max_pairs=max_pairs,
                                            cache_dir=workspace_dir(workspace) / "cache"))
            except ValueError as exc:
                _fail(f"{encoder} seed {seed}: {exc}")
    _show(members)
    if as_json:
        print(json.dumps({"members": members}))


def _show(members: list[dict]) -> None:
    table = Table(title="reward-model members")
    for col in ("member", "encoder", "seed", "train pairs", "held-out pairs", "train acc", "held-out acc"):
        table.add_column(col, justify="left" if col in ("member", "encoder") else "right")
    for m in members:
        acc = [("-" if m[k] is None else f"{m[k]:.3f}") for k in ("train_accuracy", "heldout_accuracy")]
        table.add_row(Path(m["path"]).name, m.get("encoder") or m.get("base"), str(m["seed"]),
                      str(m["train_pairs"]), str(m["heldout_pairs"]), *acc)
    out.print(table)
