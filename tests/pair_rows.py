"""Helpers for building raw signal pairs in filter tests."""
from pipeline.schema import from_rows


def raw_pair(prompt: str, chosen: str, rejected: str, *, margin=1.0, signal="edit", weight=1.0,
             ids=("f:1",)) -> dict:
    return dict(prompt=[{"role": "user", "content": prompt}], chosen=chosen, rejected=rejected,
                score_chosen=margin, score_rejected=0.0, margin=margin, source="test", signal=signal,
                annotator="test", weight=weight, input_ids=list(ids), signal_value=margin, evidence="{}",
                recipe="implicit", chosen_origin="log", rejected_origin="log", generator=None)


def raw_table(rows):
    return from_rows("raw_pairs", rows)
