"""Side-distance guard: a model-written chosen that is nearly the rejected text it was asked to
improve carries no preference (DRIFT's guard, methods S3). Distance is the token-level
normalized Levenshtein distance the edit signal uses; signals without a threshold pass."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import first_content
from pipeline.signals.edits import token_distance


def side_distance(table: pa.Table, min_distance: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    n = table.num_rows
    signals = table["signal"].to_numpy(zero_copy_only=False)
    tau = np.array([min_distance.get(s, np.nan) for s in signals], dtype=float)
    checked = np.flatnonzero(np.isfinite(tau))
    passed = np.ones(n, dtype=bool)
    reason = np.full(n, "no side-distance threshold for this signal", dtype=object)
    if len(checked):
        sub = table.take(pa.array(checked))
        d, _, _ = token_distance(first_content(sub["rejected"]), first_content(sub["chosen"]))
        ok = d >= tau[checked]
        passed[checked] = ok
        text = pc.cast(pc.round(pa.array(d), 3), pa.string()).to_numpy(zero_copy_only=False)
        reason[checked] = [f"chosen-rejected token distance {t} {'>=' if o else '<'} {m:g}"
                           for t, o, m in zip(text, ok, tau[checked])]
    return passed, reason
