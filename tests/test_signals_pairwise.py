"""Human pairwise judgments: majority vote per unordered pair, ties dropped, weight = agreement.
Crafted cases, then PandaLM / LAMP / WQRM checked against aggregations computed here from the
raw files."""
from __future__ import annotations

import collections

import pytest
from test_signals_inputs import check_contract, load, raw

from pipeline.config import PairwiseSignalConfig
from pipeline.schema import from_rows
from pipeline.signals import mine_pairwise

CFG = PairwiseSignalConfig()
norm = " ".join


def _j(rid, a, b, label, annotator, prompt="p"):
    return {"record_id": rid, "prompt": [{"role": "user", "content": prompt}], "response_a": a, "response_b": b,
            "label": label, "annotator": annotator, "format": "generic"}


def test_crafted_votes():
    table = from_rows("judgments", [
        _j("r:1", "A", "B", 1, "x"), _j("r:2", "B", "A", 2, "y"), _j("r:3", "A  ", "B", 2, "z"),  # A 2 : B 1
        _j("r:4", "C", "D", 1, "x"), _j("r:5", "C", "D", 2, "y"),                                # 1 : 1 tie
        _j("r:6", "E", "F", 1, "x"), _j("r:7", "E", "F", 0, "y"), _j("r:8", "E", "F", 0, "z"),   # tie label wins
        _j("r:9", "G", "H", 2, "x"),                                                               # single vote
        _j("r:10", "G", "H", 1, "x", prompt="other prompt"),                                       # other prompt
        _j("r:11", "I", " I", 1, "x"),                                                             # same text
    ])
    result = mine_pairwise(table, CFG)
    check_contract(table, result)
    pairs = {(p["chosen"], p["rejected"]): p for p in result.pairs.to_pylist()}
    assert set(pairs) == {("A", "B"), ("H", "G"), ("G", "H")}
    ab = pairs["A", "B"]
    assert sorted(ab["input_ids"]) == ["r:1", "r:2", "r:3"]
    assert (ab["weight"], ab["score_chosen"], ab["score_rejected"]) == pytest.approx((2 / 3, 2 / 3, 1 / 3))
    assert ab["margin"] == pytest.approx(1 / 3)
    assert pairs["H", "G"]["input_ids"] == ["r:9"] and pairs["H", "G"]["weight"] == 1.0
    reasons = dict(zip(result.unpaired["record_id"].to_pylist(), result.unpaired["reason"].to_pylist()))
    assert reasons["r:4"] == reasons["r:5"] == "pairwise: tie (1 vs 1 votes, 0 ties of 2)"
    assert reasons["r:6"].startswith("pairwise: majority judged a tie")
    assert reasons["r:11"] == "pairwise: both responses are the same text"
    # a stricter agreement threshold drops 2-of-3 majorities
    strict = mine_pairwise(table, PairwiseSignalConfig(min_agreement=0.7))
    check_contract(table, strict)
    assert ("A", "B") not in {(p["chosen"], p["rejected"]) for p in strict.pairs.to_pylist()}
    assert dict(zip(strict.unpaired["record_id"].to_pylist(), strict.unpaired["reason"].to_pylist()))["r:1"] \
        .startswith("pairwise: agreement 0.67 < 0.7")


def _result_by_pair(result):
    """frozenset of the two normalized texts -> (chosen text normalized, weight, input ids)."""
    out = {}
    for p in result.pairs.to_pylist():
        out[frozenset((norm(p["chosen"].split()), norm(p["rejected"].split())))] = (
            norm(p["chosen"].split()), p["weight"], sorted(p["input_ids"]))
    return out


def _expected(votes: dict) -> dict:
    """Apply the documented rule to independently counted votes {pair: Counter(text|'tie')}."""
    out = {}
    for pair, c in votes.items():
        n = sum(c.values())
        (best, v), *rest = c.most_common() + [("", 0)]
        if best != "tie" and v > rest[0][1] and v / n >= CFG.min_agreement:
            out[pair] = (best, v / n)
    return out


def test_pandalm_against_raw_labels():
    table = load("judgments", "pairwise_pandalm_human.jsonl")
    result = mine_pairwise(table, CFG)
    used, unpaired = check_contract(table, result)
    votes, ids = collections.defaultdict(collections.Counter), collections.defaultdict(set)
    for rid, r in raw("pairwise_pandalm_human.jsonl").items():
        if not (isinstance(r["response1"], str) and isinstance(r["response2"], str)):
            continue                                     # quarantined by the reader (non-string response)
        r1, r2 = norm(r["response1"].split()), norm(r["response2"].split())
        key = (r["instruction"], r["input"], frozenset((r1, r2)))
        ids[key].add(rid)
        for k in (1, 2, 3):
            votes[key][{1: r1, 2: r2, 0: "tie"}[r[f"annotator{k}"]]] += 1
    expected = _expected(votes)
    got = _result_by_pair(result)
    assert {k[2]: (w, round(a, 6)) for k, (w, a) in expected.items()} == \
           {k: (c, round(w, 6)) for k, (c, w, _) in got.items()}
    ties = len(votes) - len(expected)
    print(f"\nPandaLM: {len(got)} pairs, {ties} tie/no-majority groups dropped, {len(unpaired)} records unpaired")
    # hand-picked records: line 155 is labelled (1, 1, 2) -> response1 wins with weight 2/3
    r155 = raw("pairwise_pandalm_human.jsonl")["pairwise_pandalm_human.jsonl:155"]
    assert (r155["annotator1"], r155["annotator2"], r155["annotator3"]) == (1, 1, 2)
    c, w, input_ids = got[frozenset((norm(r155["response1"].split()), norm(r155["response2"].split())))]
    assert c == norm(r155["response1"].split()) and w == pytest.approx(2 / 3)
    assert input_ids == ["pairwise_pandalm_human.jsonl:155"]
    # line 102 is labelled (1, 0, 0): two annotators call it a tie -> dropped
    r102 = raw("pairwise_pandalm_human.jsonl")["pairwise_pandalm_human.jsonl:102"]
    assert (r102["annotator1"], r102["annotator2"], r102["annotator3"]) == (1, 0, 0)
    reasons = dict(zip(result.unpaired["record_id"].to_pylist(), result.unpaired["reason"].to_pylist()))
    assert reasons["pairwise_pandalm_human.jsonl:102"] == "pairwise: majority judged a tie (1 vs 0 votes, 2 ties of 3)"


def _ranking_votes(pairs_of_record):
    votes = collections.defaultdict(collections.Counter)
    for prompt, ranked in pairs_of_record:
        ranked = [norm(t.split()) for t in ranked]
        for i in range(len(ranked)):
            for j in range(i + 1, len(ranked)):
                votes[prompt, frozenset((ranked[i], ranked[j]))][ranked[i]] += 1
    return votes


def test_lamp_rankings_against_raw():
    table = load("judgments", "lamp_expert_rankings.jsonl")
    result = mine_pairwise(table, CFG)
    check_contract(table, result)
    records = []
    for r in raw("lamp_expert_rankings.jsonl").values():
        text = {x["label"]: x["text"] for x in r["responses"]}
        records.append((r["instruction"], [text[label] for label in r["ranking_best_to_worst"]]))
    expected = _expected(_ranking_votes(records))
    got = _result_by_pair(result)
    assert {k[1]: (w, round(a, 6)) for k, (w, a) in expected.items()} == \
           {k: (c, round(w, 6)) for k, (c, w, _) in got.items()}
    print(f"\nLAMP rankings: {len(got)} pairs from {table.num_rows} judgments "
          f"({collections.Counter(round(w, 2) for _, w, _ in got.values())} by agreement)")


def test_wqrm_against_raw():
    table = load("judgments", "wqrm_expert_rankings.jsonl")
    result = mine_pairwise(table, CFG)
    check_contract(table, result)
    rank = {"Most Preferred Writing Option": 0, "Second Favorite Writing Option": 1,
            "Least Preferred Writing Option": 2}
    records = []
    for r in raw("wqrm_expert_rankings.jsonl").values():
        for ann in r["annotations"]:
            if sorted(ann.values(), key=rank.get) == list(rank):     # a complete ranking of 3 drafts
                records.append((r["id"], [r[d]["candidate"] for d in sorted(ann, key=lambda d: rank[ann[d]])]))
    expected = _expected(_ranking_votes(records))
    got = _result_by_pair(result)
    print(f"\nWQRM: {len(got)} pairs; expected {len(expected)} from complete raw rankings")
    assert {k[1]: (w, round(a, 6)) for k, (w, a) in expected.items()} == \
           {k: (c, round(w, 6)) for k, (c, w, _) in got.items()}
    assert all(len(ids) == 1 for _, _, ids in got.values())         # one WQRM record per draft triple
