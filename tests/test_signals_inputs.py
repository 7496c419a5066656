"""Shared helpers for the signal tests (no tests here): canonical input tables read from the real
sample files with `pipeline.sources.read_inputs`, the raw records for assertions computed
independently of the readers, and the coverage check every miner must pass."""
from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import pyarrow as pa

from pipeline.config import SourcesConfig
from pipeline.schema import conform
from pipeline.signals.result import SignalResult

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


@cache
def load(kind: str, *files: str) -> pa.Table:
    from pipeline.sources import read_inputs

    return read_inputs([SAMPLES / f for f in files], SourcesConfig()).tables[kind]


@cache
def raw(name: str) -> dict[str, dict]:
    """record_id (FILE:LINE, as the readers name it) -> the raw JSON record."""
    opener = gzip.open if name.endswith(".gz") else open
    with opener(SAMPLES / name, "rt", encoding="utf-8") as fh:
        return {f"{name}:{i}": json.loads(line) for i, line in enumerate(fh, 1) if line.strip()}


def check_contract(table: pa.Table, result: SignalResult) -> tuple[set, set]:
    """Outputs conform to their schemas; every input record is in some pair's input_ids or in
    `unpaired` (not both); chosen never equals rejected; scores and weights are in range.
    Returns (used ids, unpaired ids)."""
    pairs = conform("raw_pairs", result.pairs)
    unpaired = conform("unpaired", result.unpaired)
    conform("signals", result.signals)
    used = {i for ids in pairs["input_ids"].to_pylist() for i in ids}
    unp = unpaired["record_id"].to_pylist()
    assert len(unp) == len(set(unp)), "a record is listed twice in unpaired"
    inputs = set(table["record_id"].to_pylist())
    assert used | set(unp) == inputs
    assert not used & set(unp)
    assert all(r.strip() and ": " in r for r in unpaired["reason"].to_pylist())
    for p in pairs.to_pylist():
        assert " ".join(p["chosen"].split()) != " ".join(p["rejected"].split())
        assert 0.0 <= p["weight"] <= 1.0
        assert p["prompt"] and p["prompt"][-1]["role"] == "user"
        assert json.loads(p["evidence"])
    return used, set(unp)
