"""Length-bias report (not a filter): how often the chosen side is the longer one and how
strongly the margin tracks the length difference, overall and per signal (methods S19)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import first_content


def _lengths(messages) -> np.ndarray:
    return pc.utf8_length(first_content(messages)).to_numpy(
        zero_copy_only=False).astype(float)


def _report(chosen: np.ndarray, rejected: np.ndarray, margin: np.ndarray) -> dict:
    diff = chosen - rejected
    out = {"pairs": int(len(diff)),
           "share_chosen_longer": float(np.mean(diff > 0)) if len(diff) else None,
           "mean_chars_chosen": float(chosen.mean()) if len(diff) else None,
           "mean_chars_rejected": float(rejected.mean()) if len(diff) else None,
           "spearman_margin_vs_length_diff": None}
    if len(diff) > 2 and np.ptp(diff) > 0 and np.ptp(margin) > 0:
        out["spearman_margin_vs_length_diff"] = spearman(margin, diff)
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the average ranks (ties share their mean rank), ranked by
    Arrow (scipy.stats would cost 0.6 s to import)."""
    def ranks(v: np.ndarray) -> np.ndarray:
        lo, hi = (pc.rank(pa.array(v), tiebreaker=t).to_numpy().astype(float) for t in ("min", "max"))
        return (lo + hi) / 2

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def length_bias(pairs: pa.Table) -> dict:
    return length_bias_of(_lengths(pairs["chosen"]), _lengths(pairs["rejected"]), pairs["margin"], pairs["signal"])


def length_bias_of(chosen: np.ndarray, rejected: np.ndarray, margin, signal) -> dict:
    """The report from the kept pairs' side lengths in characters, margins and signals."""
    margin = np.asarray(margin, dtype=float)
    signal = np.asarray(signal, dtype=object)
    report = _report(chosen, rejected, margin)
    report["by_signal"] = {s: _report(chosen[signal == s], rejected[signal == s], margin[signal == s])
                           for s in sorted(set(signal))}
    return report
