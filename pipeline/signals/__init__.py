"""Implicit-feedback miners. Each takes a canonical table and the config and returns a
SignalResult: candidate pairs (schemas/raw_pairs.yaml), the records it made no pair from with
the reason (schemas/unpaired.yaml), and optionally per-turn signals (schemas/signals.yaml)."""
