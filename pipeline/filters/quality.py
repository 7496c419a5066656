"""Quality guards and the per-signal margin threshold, vectorized over Arrow."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import as_array, first_content, per_value
from pipeline.config import QualityConfig


def quality_guard(table: pa.Table, cfg: QualityConfig) -> tuple[np.ndarray, np.ndarray]:
    """Both sides must have between min_chars and max_chars characters and at least
    min_alnum_ratio letters/digits (drops markup debris and binary garbage)."""
    n = table.num_rows
    passed = np.ones(n, dtype=bool)
    reason = np.full(n, "passed length and content guards", dtype=object)
    for side in ("rejected", "chosen"):  # chosen last: its reason wins when both fail
        text = first_content(table[side])
        length = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        alnum = alnum_counts(text)
        ratio = np.divide(alnum, length, out=np.zeros(n), where=length > 0)
        for bad, why in ((length < cfg.min_chars, f"{side} shorter than {cfg.min_chars} chars"),
                         (length > cfg.max_chars, f"{side} longer than {cfg.max_chars} chars"),
                         (ratio < cfg.min_alnum_ratio,
                          f"{side} has under {cfg.min_alnum_ratio:.0%} letters or digits")):
            passed &= ~bad
            reason[bad] = why
    return passed, reason


_ASCII_ALNUM = np.zeros(256, dtype=np.uint8)
_ASCII_ALNUM[[*range(48, 58), *range(65, 91), *range(97, 123)]] = 1


def alnum_counts(text: pa.Array) -> np.ndarray:
    """Letters and digits per string (Unicode \\p{L} and \\p{N}). All-ASCII strings are counted
    byte-wise with NumPy; only strings with other characters go through the Unicode regex."""
    text = as_array(text)
    text = pc.fill_null(text, "")
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8) if text.buffers()[2] is not None else np.zeros(0, np.uint8)
    data = data[offsets[0]:offsets[-1]]
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    full = np.flatnonzero(lengths > 0)          # reduceat needs non-empty segments
    counts = np.zeros(len(lengths), dtype=np.int64)
    if len(full):
        counts[full] = np.add.reduceat(_ASCII_ALNUM[data], starts[full], dtype=np.int64)
    rows = np.flatnonzero(~pc.string_is_ascii(text).to_numpy(zero_copy_only=False))
    if len(rows):
        sub = text.take(pa.array(rows))
        counts[rows] = pc.utf8_length(pc.replace_substring_regex(sub, r"[^\p{L}\p{N}]+", "")).to_numpy(
            zero_copy_only=False)
    return counts


def margin_threshold(table: pa.Table, min_margin: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Keep a pair when its margin reaches its signal's threshold (signals without an entry
    have none)."""
    margin = table["margin"].to_numpy(zero_copy_only=False)
    tau = per_value(table["signal"], lambda s: min_margin.get(s, -np.inf), float)
    passed = margin >= tau
    reason = pc.binary_join_element_wise(
        "margin ", _num(margin), pa.array(np.where(passed, " >= ", " < ")), _num(tau), " for ",
        table["signal"], "")
    return passed, reason.to_numpy(zero_copy_only=False)


def _num(values: np.ndarray) -> pa.Array:
    """Numbers as short text (3 decimals, trailing zeros dropped) for decision reasons."""
    text = pc.cast(pc.round(pa.array(values, pa.float64()), 3), pa.string())
    return pc.replace_substring_regex(text, r"\.0$", "")
