"""Side-distance guard: a model-written chosen that is nearly the rejected text it was asked to
improve carries no preference (DRIFT's guard, methods S3). Distance is the token-level
normalized Levenshtein distance the edit signal uses, taken as the smaller of the whole texts'
and the prefix distance (the shorter text against as many leading tokens of the longer one),
so a copy cut short at max_tokens is caught too. Signals without a threshold pass."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import first_content, per_value
from pipeline.signals.edits import token_distance


def side_distance(table: pa.Table, min_distance: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    n = table.num_rows
    tau = per_value(table["signal"], lambda s: min_distance.get(s, np.nan), float)
    checked = np.flatnonzero(np.isfinite(tau))
    passed = np.ones(n, dtype=bool)
    reason = np.full(n, "no side-distance threshold for this signal", dtype=object)
    if len(checked):
        sub = table.take(pa.array(checked))
        rejected, chosen = first_content(sub["rejected"]), first_content(sub["chosen"])
        whole, _, _ = token_distance(rejected, chosen)
        prefix, _, _ = token_distance(*_prefixes(rejected.to_pylist(), chosen.to_pylist()))
        d = np.minimum(whole, prefix)
        ok = d >= tau[checked]
        passed[checked] = ok
        text = pc.cast(pc.round(pa.array(d), 3), pa.string()).to_numpy(zero_copy_only=False)
        reason[checked] = [f"chosen-rejected token distance {t} {'>=' if o else '<'} {m:g}"
                           for t, o, m in zip(text, ok, tau[checked])]
    return passed, reason


def _prefixes(a: list[str], b: list[str]) -> tuple[pa.Array, pa.Array]:
    """Each pair cut to the token count of its shorter side."""
    out_a, out_b = [], []
    for x, y in zip(a, b):
        tx, ty = x.split(), y.split()
        n = min(len(tx), len(ty))
        out_a.append(" ".join(tx[:n]))
        out_b.append(" ".join(ty[:n]))
    return pa.array(out_a, pa.string()), pa.array(out_b, pa.string())
