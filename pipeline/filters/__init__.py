"""Filters narrow candidate pairs. Each one looks only at pairs no earlier filter dropped and
records, per pair, whether it passed and why (lineage `decisions`)."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import FiltersConfig
from pipeline.filters.dedup import dedup_prompts
from pipeline.filters.per_prompt import cap_per_prompt
from pipeline.filters.prior import Prior
from pipeline.filters.quality import margin_threshold, quality_guard
from pipeline.filters.side_distance import side_distance
from pipeline.pairs import Candidates

# name -> the columns the filter reads, in the order the filters run
COLUMNS = {"quality": ["chosen", "rejected"], "side_distance": ["signal", "chosen", "rejected"],
           "margin": ["signal", "margin"], "prompt_dedup": ["prompt_id", "prompt"],
           "per_prompt_cap": ["prompt_id", "pair_id", "weight", "margin"]}
PER_PAIR = ("quality", "side_distance", "margin")     # decided by each pair alone
RUN_WIDE = ("prompt_dedup", "per_prompt_cap")         # decided over all the run's pairs
RUN_WIDE_COLUMNS = list(dict.fromkeys(c for name in RUN_WIDE for c in COLUMNS[name]))


def apply_filters(cands: Candidates, cfg: FiltersConfig, cache_dir: Path | None = None,
                  names: tuple[str, ...] = PER_PAIR + RUN_WIDE, prior: Prior | None = None) -> dict:
    """Run the filters `names` in order; returns stats (e.g. embedding cache hits) for the manifest.
    `prior` is what the run-wide filters must respect from a parent version (filters/prior.py)."""
    stats: dict = {}
    run = {"quality": lambda t: quality_guard(t, cfg.quality),
           "side_distance": lambda t: side_distance(t, cfg.min_side_distance),
           "margin": lambda t: margin_threshold(t, cfg.min_margin),
           "prompt_dedup": lambda t: dedup_prompts(t, cfg.dedup, cache_dir, stats, prior),
           "per_prompt_cap": lambda t: cap_per_prompt(t, cfg.per_prompt_cap, prior)}
    for name in (n for n in COLUMNS if n in names):
        alive, idx = cands.alive(COLUMNS[name])  # each filter gets the columns it reads, not a copy of all
        passed, reason = run[name](alive)
        cands.record(name, idx, passed, reason)
    return stats
