"""Filters narrow candidate pairs. Each one looks only at pairs no earlier filter dropped and
records, per pair, whether it passed and why (lineage `decisions`)."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import FiltersConfig
from pipeline.filters.dedup import dedup_prompts
from pipeline.filters.per_prompt import cap_per_prompt
from pipeline.filters.quality import margin_threshold, quality_guard
from pipeline.filters.side_distance import side_distance
from pipeline.pairs import Candidates


def apply_filters(cands: Candidates, cfg: FiltersConfig, cache_dir: Path | None = None) -> dict:
    """Run the filters in order; returns stats (e.g. embedding cache hits) for the manifest."""
    stats: dict = {}
    sides, ids = ["chosen", "rejected"], ["prompt_id", "pair_id"]
    for name, columns, run in (
            ("quality", sides, lambda t: quality_guard(t, cfg.quality)),
            ("side_distance", ["signal", *sides], lambda t: side_distance(t, cfg.min_side_distance)),
            ("margin", ["signal", "margin"], lambda t: margin_threshold(t, cfg.min_margin)),
            ("prompt_dedup", ["prompt_id", "prompt"], lambda t: dedup_prompts(t, cfg.dedup, cache_dir, stats)),
            ("per_prompt_cap", [*ids, "weight", "margin"], lambda t: cap_per_prompt(t, cfg.per_prompt_cap))):
        alive, idx = cands.alive(columns)  # each filter gets the columns it reads, not a copy of all
        passed, reason = run(alive)
        cands.record(name, idx, passed, reason)
    return stats
