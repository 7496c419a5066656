"""Implicit-feedback miners. Each takes a canonical table and the config and returns a
SignalResult: candidate pairs (schemas/raw_pairs.yaml), the records it made no pair from with
the reason (schemas/unpaired.yaml), and optionally per-turn signals (schemas/signals.yaml)."""

from pipeline.signals.conversations import mine_conversations  # noqa: E402
from pipeline.signals.dissatisfaction import classify_turns, explode_turns  # noqa: E402
from pipeline.signals.edits import mine_edits  # noqa: E402
from pipeline.signals.pairwise import mine_pairwise  # noqa: E402
from pipeline.signals.ugc import mine_ugc  # noqa: E402

__all__ = ["classify_turns", "explode_turns", "mine_conversations", "mine_edits", "mine_pairwise", "mine_ugc"]
