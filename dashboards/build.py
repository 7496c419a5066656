"""Build one version's dashboard: run the SQL files, chart them, render a single HTML file with
Plotly's JavaScript inlined (it opens with no network)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import plotly.offline

from dashboards import charts
from dashboards.queries import run_queries
from pipeline.atomic import write_bytes
from pipeline.store.diff import diff_versions
from pipeline.store.layout import PAGE_FILE, StoreError, VersionRef, resolve_ref
from pipeline.store.manifest import LEDGER_KEYS

TEMPLATE = Path(__file__).resolve().parent / "page.html.j2"
COMPARED_QUERIES = ["overview", "funnel", "pairs_by"]


@dataclass
class Section:
    id: str
    title: str
    note: str = ""
    figures: list[str] = field(default_factory=list)    # figure HTML fragments
    tables: list[dict] = field(default_factory=list)    # {"caption", "columns", "rows"}
    empty: str = ""                                     # shown when there is nothing to show


def _figure(fig, div_id: str) -> list[str]:
    if fig is None:
        return []
    return [fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                        config={"displaylogo": False, "responsive": True})]


def _table(rows: list[dict], columns: list[str] | None = None, caption: str = "") -> list[dict]:
    if not rows:
        return []
    columns = columns or list(rows[0])
    return [{"caption": caption, "columns": columns, "rows": [[_cell(r[c]) for c in columns] for r in rows]}]


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _overview(data: dict, ref: VersionRef) -> dict:
    if not data["overview"]:
        raise StoreError(f"{ref.dataset}@{ref.version} is not in the catalog's versions view "
                         "(run `prefmill versions` to refresh it, or `prefmill verify`)")
    return data["overview"][0]


def _sections(data: dict, overview: dict) -> list[Section]:
    agreement = data["annotator_agreement"]
    return [
        Section("funnel", "Ledger", "Every input record is kept, filtered (by the stage named) or quarantined: "
                f"{overview['inputs']:,} = {overview['kept']:,} kept + {overview['filtered']:,} filtered + "
                f"{overview['quarantined']:,} quarantined.",
                _figure(charts.funnel(data["funnel"], overview["inputs"], overview["kept"]), "chart-funnel"),
                _table(data["filter_reasons"], caption="Top filter reasons")),
        Section("pairs", "Pairs by source, signal and recipe", f"{overview['pairs']:,} kept pairs.",
                _figure(charts.pairs_by(data["pairs_by"]), "chart-pairs-by"),
                empty="No kept pairs."),
        Section("scores", "Score and margin distributions",
                "Per signal, the scores of the label that made each kept pair (in the signal's own unit); per "
                "model annotator, its probability that the chosen side is better (p_a) and its margin.",
                _figure(charts.score_histograms(data["score_histograms"]), "chart-scores"),
                empty="No scores."),
        Section("length", "Length bias", "A judge or signal that prefers the longer answer teaches length, "
                "not quality: watch the share of pairs whose chosen side is longer.",
                _figure(charts.length_scatter(data["length_points"]), "chart-length"),
                _table(data["length_bias"], caption="Per signal"), empty="No kept pairs."),
        Section("annotators", "Annotator agreement and position flips",
                "Verdicts of each model annotator on the pairs it scored (kept or not); a dual-order judge's "
                "flip is a verdict that changed when the two responses swapped places.",
                _figure(charts.annotator_verdicts(agreement), "chart-annotators"), _table(agreement),
                empty="No model annotator ran for this version."),
        Section("duplicates", "Near-duplicate prompt clusters",
                "Pairs dropped by prompt_dedup, grouped by the prompt they duplicate.",
                tables=_table(data["near_duplicates"]), empty="No near-duplicate prompts were dropped."),
        Section("quarantine", "Top quarantine reasons", "",
                _figure(charts.counts_bar(data["quarantine_reasons"], "error_kind", "records", "Quarantined records"),
                        "chart-quarantine"),
                _table(data["quarantine_reasons"]), empty="Nothing was quarantined."),
    ]


def _compare_section(workspace, this: VersionRef, other: VersionRef, data: dict) -> Section:
    theirs = run_queries(workspace, other, COMPARED_QUERIES)
    other_overview = _overview(theirs, other)
    diff = diff_versions(workspace, other, this)
    ledger = [{"": k, str(other): other_overview[k], str(this): data["overview"][0][k],
               "change": data["overview"][0][k] - other_overview[k]} for k in LEDGER_KEYS]
    removed = {}
    for side, rows in ((str(other), theirs["funnel"]), (str(this), data["funnel"])):
        for r in rows:
            removed.setdefault(charts.stage_label(r), {})[side] = r["removed"]
    stages = [{"stage": label, str(other): v.get(str(other), 0), str(this): v.get(str(this), 0),
               "change": v.get(str(this), 0) - v.get(str(other), 0)} for label, v in removed.items()]
    changes = [{"change": kind, "pairs": diff[kind]["count"], "examples": ", ".join(e[:12] for e in diff[kind]["examples"])}
               for kind in ("added", "removed", "changed", "flipped", "unchanged")]
    return Section("compare", f"What changed from {other} to {this}",
                   "Added and removed by pair_id; changed: same pair, different scores, margin, weight or annotator; "
                   "flipped: same prompt with chosen and rejected swapped (also counted once in added and removed).",
                   _figure(charts.compare_signals(data["pairs_by"], theirs["pairs_by"], str(this), str(other)),
                           "chart-compare"),
                   _table(changes, caption="Pairs") + _table(ledger, caption="Ledger")
                   + _table(stages, caption="Records removed by each stage"))


def _sample(rows: list[dict]) -> list[dict]:
    for r in rows:
        for key in ("evidence", "generator", "annotation"):
            if r[key]:
                r[key] = json.dumps(json.loads(r[key]), indent=1, ensure_ascii=False)
    return rows


def build_dashboard(workspace, ref, out_dir, compare=None) -> Path:
    """Write OUT_DIR/index.html for version `ref` (compared with `compare` if given); returns its path."""
    this, _ = resolve_ref(workspace, ref)
    other = resolve_ref(workspace, compare)[0] if compare is not None else None
    data = run_queries(workspace, this)
    overview = _overview(data, this)
    with charts.default_template():
        sections = ([_compare_section(workspace, this, other, data)] if other else []) + _sections(data, overview)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    html = env.get_template(TEMPLATE.name).render(
        ref=this, other=other, overview=overview, ledger_keys=LEDGER_KEYS, sections=sections,
        sample=_sample(data["sample_pairs"]), plotly_js=plotly.offline.get_plotlyjs())
    path = Path(out_dir) / PAGE_FILE
    write_bytes(path, html.encode("utf-8"))
    return path
