"""Plotly figures from the dashboard queries' rows. Each function takes query rows (lists of dicts)
and returns a figure, or None when there is nothing to draw."""
from __future__ import annotations

import math
from contextlib import contextmanager

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
KIND_COLORS = {"inputs": "#4c78a8", "quarantine": "#e45756", "signal": "#f58518", "filter": "#b279a2",
               "kept": "#54a24b"}
METRIC_COLORS = {"score_chosen": "#54a24b", "score_rejected": "#e45756", "margin": "#4c78a8",
                 "p_a": "#72b7b2"}


@contextmanager
def default_template():
    """Plotly's default template set to TEMPLATE while figures are built and written, then put
    back. A template named on each figure is copied and validated per figure (about 10 ms each);
    the default is applied once, with the same result in the page."""
    before, pio.templates.default = pio.templates.default, TEMPLATE
    try:
        yield
    finally:
        pio.templates.default = before


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), **kw)
    return fig


def stage_label(step: dict) -> str:
    return step["stage"] if step["kind"] == "quarantine" else f"{step['kind']}: {step['stage']}"


def funnel(steps: list[dict], inputs: int, kept: int) -> go.Figure:
    """inputs -> each stage's survivors -> kept; the hover names what the stage removed."""
    labels = ["inputs"] + [stage_label(s) for s in steps] + ["kept"]
    values = [inputs] + [s["remaining"] for s in steps] + [kept]
    removed = [""] + [f"removed {s['removed']:,}" for s in steps] + [""]
    colors = [KIND_COLORS["inputs"]] + [KIND_COLORS[s["kind"]] for s in steps] + [KIND_COLORS["kept"]]
    fig = go.Figure(go.Funnel(y=labels, x=values, customdata=removed, textinfo="value+percent initial",
                              marker={"color": colors},
                              hovertemplate="%{y}<br>%{x:,} remaining<br>%{customdata}<extra></extra>"))
    return _layout(fig, 120 + 34 * len(labels), title="Ledger: every input record, stage by stage")


def pairs_by(rows: list[dict]) -> go.Figure | None:
    dims = ["source", "signal", "recipe"]
    if not rows:
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"pairs by {d}" for d in dims], horizontal_spacing=0.12)
    for col, dim in enumerate(dims, 1):
        part = [r for r in rows if r["dimension"] == dim][::-1]
        fig.add_trace(go.Bar(x=[r["pairs"] for r in part], y=[r["value"] for r in part], orientation="h",
                             customdata=[[r["mean_margin"], r["mean_weight"]] for r in part], showlegend=False,
                             marker_color=KIND_COLORS["inputs"], text=[r["pairs"] for r in part],
                             hovertemplate="%{y}: %{x:,} pairs<br>mean margin %{customdata[0]}"
                                           "<br>mean weight %{customdata[1]}<extra></extra>"),
                      row=1, col=col)
    longest = max(len([r for r in rows if r["dimension"] == d]) for d in dims)
    return _layout(fig, 140 + 28 * longest)


def score_histograms(rows: list[dict]) -> go.Figure | None:
    """One panel per series (a signal's pair labels, or a model annotator), a bar set per metric."""
    series = list(dict.fromkeys((r["kind"], r["series"]) for r in rows))
    if not series:
        return None
    cols = 2 if len(series) > 1 else 1
    n_rows = math.ceil(len(series) / cols)
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=[f"{s} ({k})" for k, s in series],
                        vertical_spacing=min(0.12, 0.5 / n_rows))
    shown = set()
    for i, key in enumerate(series):
        for metric in dict.fromkeys(r["metric"] for r in rows if (r["kind"], r["series"]) == key):
            part = [r for r in rows if (r["kind"], r["series"], r["metric"]) == (*key, metric)]
            fig.add_trace(go.Bar(x=[r["center"] for r in part], y=[r["pairs"] for r in part],
                                 width=[r["width"] for r in part], name=metric, legendgroup=metric,
                                 showlegend=metric not in shown, opacity=0.65,
                                 marker_color=METRIC_COLORS.get(metric, "#888"),
                                 hovertemplate=f"{metric} ≈ %{{x:.3g}}: %{{y}} pairs<extra></extra>"),
                          row=i // cols + 1, col=i % cols + 1)
            shown.add(metric)
    fig.update_layout(barmode="overlay")
    fig = _layout(fig, 90 + 230 * n_rows, legend=dict(orientation="h", x=0, y=1, yanchor="top",
                                                        yref="container", title_text="metric: "))
    return fig.update_layout(margin=dict(t=70))


def length_scatter(points: list[dict]) -> go.Figure | None:
    if not points:
        return None
    fig = go.Figure()
    for signal in sorted({p["signal"] for p in points}):
        part = [p for p in points if p["signal"] == signal]
        fig.add_trace(go.Scatter(x=[max(p["rejected_chars"], 1) for p in part],
                                   y=[max(p["chosen_chars"], 1) for p in part], mode="markers", name=signal,
                                   marker=dict(size=5, opacity=0.6), text=[p["pair_id"][:12] for p in part],
                                   hovertemplate="rejected %{x:,} chars<br>chosen %{y:,} chars<br>%{text}"
                                                 "<extra>" + signal + "</extra>"))
    low = min(max(min(p["chosen_chars"], p["rejected_chars"]), 1) for p in points)
    top = max(max(p["chosen_chars"], p["rejected_chars"], 1) for p in points)
    fig.add_trace(go.Scatter(x=[low, top], y=[low, top], mode="lines", name="chosen = rejected",
                             line=dict(color="#999", dash="dash")))
    fig.update_xaxes(type="log", title="rejected length (chars)")
    fig.update_yaxes(type="log", title="chosen length (chars)")
    return _layout(fig, 460, title="Above the line: the chosen side is longer")


def annotator_verdicts(rows: list[dict]) -> go.Figure | None:
    if not rows:
        return None
    fig = go.Figure()
    for key, label, color in (("agrees", "agrees with the signal", "#54a24b"), ("ties", "tie", "#bab0ac"),
                              ("disagrees", "prefers rejected", "#e45756"), ("unscored", "unscored", "#444")):
        fig.add_trace(go.Bar(x=[r["name"] for r in rows], y=[r[key] for r in rows], name=label, marker_color=color))
    fig.update_layout(barmode="stack")
    return _layout(fig, 320, title="Annotator verdicts on the pairs they scored")


def counts_bar(rows: list[dict], label: str, value: str, title: str) -> go.Figure | None:
    if not rows:
        return None
    rows = rows[::-1]
    fig = go.Figure(go.Bar(x=[r[value] for r in rows], y=[r[label] for r in rows], orientation="h",
                           marker_color=KIND_COLORS["quarantine"], text=[r[value] for r in rows]))
    return _layout(fig, 100 + 30 * len(rows), title=title)


def compare_signals(this: list[dict], other: list[dict], this_name: str, other_name: str) -> go.Figure | None:
    def by_signal(rows):
        return {r["value"]: r["pairs"] for r in rows if r["dimension"] == "signal"}

    a, b = by_signal(other), by_signal(this)
    signals = sorted(set(a) | set(b))
    if not signals:
        return None
    fig = go.Figure([go.Bar(x=signals, y=[a.get(s, 0) for s in signals], name=other_name, marker_color="#bab0ac"),
                     go.Bar(x=signals, y=[b.get(s, 0) for s in signals], name=this_name, marker_color="#4c78a8")])
    fig.update_layout(barmode="group")
    return _layout(fig, 340, title="Pairs by signal in both versions")
