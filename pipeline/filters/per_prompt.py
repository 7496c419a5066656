"""Per-prompt cap: no prompt contributes more than `cap` pairs (highest margin, then weight). In an
incremental run the pairs the parent version kept for a prompt take their places first."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import sorted_unique
from pipeline.filters.prior import Prior


def cap_per_prompt(table: pa.Table, cap: int, prior: Prior | None = None) -> tuple[np.ndarray, np.ndarray]:
    n = table.num_rows
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, object)
    prompt = sorted_unique(table["prompt_id"])[2]          # ids as integer codes in sorted order:
    order = np.lexsort((sorted_unique(table["pair_id"])[2],  # the same order as the strings, sorted fast
                        -table["weight"].to_numpy(zero_copy_only=False),
                        -table["margin"].to_numpy(zero_copy_only=False), prompt))
    sorted_prompt = prompt[order]
    starts = np.r_[True, sorted_prompt[1:] != sorted_prompt[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - group_start + 1
    if prior is not None and prior.index:  # places the parent's kept pairs already take
        parent = prior.prompts(table["prompt_id"])
        at = pc.index_in(table["prompt_id"], value_set=parent["prompt_id"])
        rank += pc.fill_null(pc.take(parent["pairs"], at), 0).to_numpy(zero_copy_only=False)
    passed = rank <= cap
    reason = pc.binary_join_element_wise(
        "rank ", pc.cast(pa.array(rank), pa.string()),
        pa.array(np.where(passed, f" of its prompt <= cap {cap}", f" of its prompt > cap {cap} (lower margin)")), "")
    return passed, reason.to_numpy(zero_copy_only=False)
