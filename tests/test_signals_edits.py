"""Edit pairs (edited > original) gated by token-level edit distance, on crafted edits and on the
LAMP expert edits and IteraTeR R3 human accept/reject revisions."""
from __future__ import annotations

import collections
import json

import numpy as np
import pyarrow as pa
import pytest
from test_signals_inputs import check_contract, load, raw

from pipeline.config import EditSignalConfig
from pipeline.schema import from_rows
from pipeline.signals import mine_edits
from pipeline.signals.edits import token_distance

CFG = EditSignalConfig()
WORDS = "the quick brown fox jumps over the lazy dog near the quiet river bank at dawn today".split()


def token_lev(a: list[str], b: list[str]) -> int:
    """Plain dynamic-programming Levenshtein over tokens (independent of rapidfuzz)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _edit(rid, original, edited):
    return {"record_id": rid, "edit_id": rid, "prompt": [{"role": "user", "content": "write a sentence"}],
            "original": original, "edited": edited, "editor": None, "format": "generic"}


def test_crafted_edits():
    base = " ".join(WORDS * 2)                                  # 34 tokens
    one_word = base.replace("lazy", "sleepy", 1)                # d = 1/34 = 0.029: typo level
    several = base.replace("quick brown", "slow red").replace("quiet", "loud")  # 2 x 3 tokens: 6/34
    rewrite = " ".join(f"w{i}" for i in range(34))
    table = from_rows("edits", [_edit("e:1", base, "  " + base.replace(" ", "\n  ")),
                                _edit("e:2", base, one_word), _edit("e:3", base, several), _edit("e:4", base, rewrite)])
    result = mine_edits(table, CFG)
    check_contract(table, result)
    reasons = dict(zip(result.unpaired["record_id"].to_pylist(), result.unpaired["reason"].to_pylist()))
    assert reasons == {"e:1": "edits: no change (token-identical)", "e:2": "edits: typo-level edit (d=0.029 < 0.05)",
                       "e:4": "edits: rewrite (d=1 > 0.8)"}
    (pair,) = result.pairs.to_pylist()
    assert (pair["chosen"], pair["rejected"], pair["signal"]) == (several, base, "edit")
    assert pair["margin"] == pair["signal_value"] == pytest.approx(6 / 34, abs=1e-4)
    ev = json.loads(pair["evidence"])
    assert (ev["original_tokens"], ev["edited_tokens"]) == (34, 34)


def test_rapidfuzz_token_distance_matches_plain_dp():
    table = load("edits", "lamp_edits.jsonl")
    for row in table.slice(0, 5).to_pylist():
        a, b = row["original"].split(), row["edited"].split()
        d, _, _ = token_distance(pa.array([row["original"]]), pa.array([row["edited"]]))
        assert d[0] == pytest.approx(token_lev(a, b) / max(len(a), len(b)), abs=1e-6)


@pytest.mark.parametrize("name", ["lamp_edits.jsonl", "r3_human_in_the_loop_revisions.jsonl"])
def test_real_edits(name):
    table = load("edits", name)
    result = mine_edits(table, CFG)
    check_contract(table, result)
    d, _, _ = token_distance(table["original"].combine_chunks(), table["edited"].combine_chunks())
    kind = np.where(d == 0, "no change", np.where(d < CFG.min_distance, "typo",
                                                  np.where(d > CFG.max_distance, "rewrite", "kept")))
    counts = collections.Counter(kind.tolist())
    print(f"\n{name}: {table.num_rows} edits, d percentiles 10/50/90 = "
          f"{np.percentile(d, [10, 50, 90]).round(3).tolist()}, {dict(counts)}")
    assert result.pairs.num_rows == counts["kept"]
    assert all(p["chosen"] != p["rejected"] for p in result.pairs.to_pylist())


def test_lamp_specific_records():
    table = load("edits", "lamp_edits.jsonl")
    result = mine_edits(table, CFG)
    record = raw("lamp_edits.jsonl")
    # record 32: the writer replaced most of the paragraph -> a rewrite, not an edit
    a, b = record["lamp_edits.jsonl:32"]["preedit"].split(), record["lamp_edits.jsonl:32"]["postedit"].split()
    d = token_lev(a, b) / max(len(a), len(b))
    assert d > CFG.max_distance
    reasons = dict(zip(result.unpaired["record_id"].to_pylist(), result.unpaired["reason"].to_pylist()))
    assert reasons["lamp_edits.jsonl:32"] == f"edits: rewrite (d={round(d, 3)} > 0.8)"
    # record 1 (the README example): kept, chosen = the professional's postedit
    pair = next(p for p in result.pairs.to_pylist() if p["input_ids"] == ["lamp_edits.jsonl:1"])
    assert pair["chosen"] == record["lamp_edits.jsonl:1"]["postedit"]
    assert pair["rejected"] == record["lamp_edits.jsonl:1"]["preedit"]
    a, b = pair["rejected"].split(), pair["chosen"].split()
    assert pair["margin"] == pytest.approx(token_lev(a, b) / max(len(a), len(b)), abs=1e-4)
