"""What every annotator shares. Annotators take Arrow tables and return Arrow tables, row for
row:

* pointwise (rubric judge, follow-up likelihood, density ratio, reward models):
  `score(items)` with items = {prompt: messages, response: string} returns
  {score: float64, evidence: json, error: string}. A null score is *unscored* (unparsable
  output, a text the model cannot take, ...) and `error` says why; it is never 0 and never guessed.
* pairwise (the dual-order judge), and every pointwise annotator through its scores:
  `compare(items)` with items = {prompt, response_a, response_b} returns
  {p_a: float64 (probability that a is better), verdict: a | b | tie | null, evidence, error}.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

SCORES = pa.schema([("score", pa.float64()), ("evidence", pa.string()), ("error", pa.string())])
VERDICTS = pa.schema([("p_a", pa.float64()), ("verdict", pa.string()), ("evidence", pa.string()),
                      ("error", pa.string())])


@dataclass
class Cost:
    """Wall time an annotator spent and how many items it served (for seconds per pair)."""
    seconds: float = 0.0
    items: int = 0


def as_rows(items: pa.Table, *columns: str) -> list[tuple]:
    """Python rows of the named columns; annotators loop per row only to build model requests."""
    data = [items[c].to_pylist() for c in columns]
    return list(zip(*data))


def optional_column(items: pa.Table, name: str) -> list:
    """A column's values, or None per row when the table has no such column (e.g. `reference`)."""
    return items[name].to_pylist() if name in items.column_names else [None] * items.num_rows


def scorable(rows: list[tuple[list[dict], str]]) -> tuple[list[int], dict[int, str]]:
    """Indexes of (prompt, response) rows with a non-empty response, and the reason for each other row."""
    ok = [i for i, (_, r) in enumerate(rows) if r and r.strip()]
    return ok, {i: "empty_text: the response is empty" for i in set(range(len(rows))) - set(ok)}


def row_error(result) -> str:
    """A model Result's per-row error as the unscored reason."""
    return f"{result.error.kind}: {result.error.message}"


def distinct_sides(items: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Every distinct (prompt, response) of a pairs table once, as pointwise items, and the
    position of each pair's a and b side in it: each response is scored once per run. A pair's
    `reference` and `checklist` (when the table has them) go with both of its sides."""
    extras = [c for c in ("reference", "checklist") if c in items.column_names]
    context = [json.dumps(x, sort_keys=True) for x in zip(items["prompt"].to_pylist(),
                                                           *(items[c].to_pylist() for c in extras))]
    keys: dict[tuple, int] = {}
    sides = [np.array([keys.setdefault((c, r), len(keys)) for c, r in zip(context, items[col].to_pylist())], dtype=int)
             for col in ("response_a", "response_b")]
    flat = [(json.loads(c), r) for c, r in keys]
    table = pa.table({"prompt": pa.array([c[0] for c, _ in flat], items["prompt"].type),
                      "response": pa.array([r for _, r in flat], pa.string()),
                      **{name: pa.array([c[k] for c, _ in flat], items[name].type) for k, name in enumerate(extras, 1)}})
    return table, sides[0], sides[1]


def scores_table(score: list, evidence: list[dict | None], error: list[str | None]) -> pa.Table:
    return pa.table({"score": pa.array(score, pa.float64()),
                     "evidence": pa.array([None if e is None else json.dumps(e, ensure_ascii=False)
                                           for e in evidence], pa.string()),
                     "error": pa.array(error, pa.string())}, schema=SCORES)


def verdicts_table(p_a: list, verdict: list, evidence: list[dict | None], error: list) -> pa.Table:
    return pa.table({"p_a": pa.array(p_a, pa.float64()), "verdict": pa.array(verdict, pa.string()),
                     "evidence": pa.array([None if e is None else json.dumps(e, ensure_ascii=False)
                                           for e in evidence], pa.string()),
                     "error": pa.array(error, pa.string())}, schema=VERDICTS)


def verdict_of(p_a: float | None) -> str | None:
    if p_a is None:
        return None
    return "a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie"


@dataclass
class Annotator:
    """Base of every annotator: a name (the column prefix in pairs/lineage), what it is for the
    lineage (`describe`), and its cost. Subclasses implement `score` or `compare`."""
    name: str
    kind: str = "pointwise"          # pointwise | pairwise
    cost: Cost = field(default_factory=Cost)

    def describe(self) -> dict:
        raise NotImplementedError

    def score(self, items: pa.Table) -> pa.Table:
        raise NotImplementedError(f"{self.name} is a pairwise annotator: use compare()")

    def margins(self, verdicts: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: the margin a - b in the annotator's own unit, and in z units over the run
        (the score difference divided by the standard deviation of every score this run gave).
        NaN where unscored."""
        ev = [json.loads(e) if e else {} for e in verdicts["evidence"].to_pylist()]
        a = np.array([np.nan if e.get("score_a") is None else e["score_a"] for e in ev], dtype=float)
        b = np.array([np.nan if e.get("score_b") is None else e["score_b"] for e in ev], dtype=float)
        pooled = np.concatenate([a, b])
        sd = np.nanstd(pooled) if np.isfinite(pooled).sum() > 1 else np.nan
        margin = a - b
        return margin, margin / sd if sd and np.isfinite(sd) else np.full_like(margin, np.nan)

    def timed(self, fn, items: pa.Table) -> pa.Table:
        began = time.perf_counter()
        out = fn(items)
        self.cost.seconds += time.perf_counter() - began
        self.cost.items += items.num_rows
        return out

    def compare(self, items: pa.Table) -> pa.Table:
        """Pointwise annotators compare by scoring each distinct (prompt, response) once: a is
        better when its score is higher; equal scores are a tie; an unscored side leaves the
        pair unscored."""
        flat, side_a, side_b = distinct_sides(items)
        scored = self.score(flat)
        s, err = scored["score"].to_pylist(), scored["error"].to_pylist()
        p_a, verdict, evidence, errors = [], [], [], []
        for i, j in zip(side_a, side_b):
            if s[i] is None or s[j] is None:
                p_a.append(None)
                errors.append(err[i] if s[i] is None else err[j])
            else:
                p_a.append(float(np.sign(s[i] - s[j]) * 0.5 + 0.5))
                errors.append(None)
            verdict.append(verdict_of(p_a[-1]))
            evidence.append({"score_a": s[i], "score_b": s[j]})
        return verdicts_table(p_a, verdict, evidence, errors)
