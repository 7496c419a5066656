"""Human-readable summary of a committed version (printed by `prefmill curate`)."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.store.layout import dashboard_page
from pipeline.store.manifest import LEDGER_KEYS


def print_summary(console: Console, manifest: dict, workspace: Path) -> None:
    ledger = manifest["ledger"]
    name, version = manifest["dataset"], manifest["version"]
    console.print(f"\n[bold]{name} v{version}[/] committed "
                  f"(parent: {manifest.get('parent') or 'none'}) -> "
                  f"{workspace / 'datasets' / name / f'v{version}'}")
    t = Table(title="ledger: inputs = kept + filtered + quarantined")
    for col in LEDGER_KEYS:
        t.add_column(col, justify="right")
    t.add_row(*[str(ledger[c]) for c in LEDGER_KEYS])
    console.print(t)
    mixing = manifest["stats"].get("mixing", {})
    for title, counts in (("pairs by signal", manifest["stats"].get("pairs_by_signal", {})),
                          ("pairs by recipe", mixing.get("pairs_by_recipe", {}))):
        if counts:
            console.print(f"{title}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for warning in mixing.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for title, reasons in (("top filter reasons", ledger["filtered_reasons"]),
                           ("top quarantine reasons", ledger["quarantine_reasons"])):
        if reasons:
            console.print(f"{title}: " + "; ".join(f"{r} ({n})" for r, n in list(reasons.items())[:5]),
                          highlight=False)
    board = dashboard_page(workspace, name, version)
    if board.exists():
        console.print(f"dashboard: {board}", highlight=False)
    bias = manifest["stats"].get("length_bias", {})
    if bias.get("share_chosen_longer") is not None:
        console.print(f"length bias: chosen longer in {bias['share_chosen_longer']:.0%} of pairs, "
                      f"spearman(margin, length diff) = {_fmt(bias['spearman_margin_vs_length_diff'])}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
