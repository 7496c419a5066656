"""SAT / DSAT / NEUTRAL turn classification and DSAT -> SAT pairs: crafted turns per rule, then
the real ShareGPT sample (2,000 conversations)."""
from __future__ import annotations

import collections
import json

import pyarrow as pa
import pytest
from test_signals_inputs import check_contract, load

from pipeline.config import ConversationSignalConfig
from pipeline.schema import from_rows
from pipeline.signals import classify_turns, mine_conversations

CFG = ConversationSignalConfig()
PY_REQUEST = "write a python function that reverses a string"
PY_ANSWER = "Here is one:\n\ndef reverse(s):\n    return s[::-1]\n\nIt slices the string backwards."


def classify(turn: str, request: str | None = PY_REQUEST, answer: str | None = PY_ANSWER) -> dict:
    t = classify_turns(pa.array([turn]), pa.array([request], pa.string()), pa.array([answer], pa.string()), CFG)
    return t.to_pylist()[0]


@pytest.mark.parametrize("turn, label, category", [
    ("thank you!", "SAT", "gratitude"),
    ("Thanks a lot, that's exactly what I needed", "SAT", "gratitude"),
    ("no problem, thanks!", "SAT", "gratitude"),
    ("thanks! can you now do the same in Java?", "SAT", "gratitude"),
    ("Perfect", "SAT", "acceptance"),
    ("that works", "SAT", "acceptance"),
    ("got it", "SAT", "acceptance"),
    ("Great, now add type hints.", "SAT", "acceptance"),
    ("That's wrong", "DSAT", "correction"),
    ("thanks, but that's wrong", "DSAT", "correction"),
    ("No, I meant a function that reverses the words, not the characters", "DSAT", "correction"),
    ("this is incorrect. the slice should start at -1", "DSAT", "correction"),
    ("no. use a loop instead", "DSAT", "correction"),
    ("It doesn't work", "DSAT", "complaint"),
    ("that's not what I asked", "DSAT", "complaint"),
    ("you didn't handle unicode", "DSAT", "complaint"),
    ("I still get the same error", "DSAT", "complaint"),
    ("I get this error: TypeError: 'int' object is not subscriptable", "DSAT", "complaint"),
    ("Write a Python function that reverses a string.", "DSAT", "rephrase"),
    ("continue", "NEUTRAL", "continue"),
    ("Please continue", "NEUTRAL", "continue"),
    ("continueShare Prompt", "NEUTRAL", "continue"),          # ShareGPT UI residue stripped
    ("You didn't finish", "NEUTRAL", "continue"),
    ("go on", "NEUTRAL", "continue"),
    ("what about in Java?", "NEUTRAL", "follow_up"),
    ("why does the slice reverse it", "NEUTRAL", "follow_up"),
    ("recommend a good lasagna recipe", "NEUTRAL", "new_topic"),
])
def test_crafted_turns(turn, label, category):
    got = classify(turn)
    assert (got["label"], got["category"]) == (label, category), got
    assert 0.0 < got["confidence"] <= 1.0
    assert got["evidence"] and ":" in got["evidence"]


@pytest.mark.parametrize("turn", [
    "continue",
    "I have no idea how to set up the database, can you explain the steps",   # "no" inside
    "no fossil fuels or combustion engines are allowed on the forest moon",   # "no" + noun
    "If you didn't receive any specification, what would you do?",           # "you didn't" inside
    "write chapter 3 of the story about the dragon and the knight",           # next item, not a retry
])
def test_not_dsat(turn):
    got = classify(turn, request="write chapter 2 of the story about the dragon and the knight")
    assert got["label"] != "DSAT", got


def test_position_and_context_matter():
    short = classify("thanks!")
    inside = classify("Here is the report I wrote for my manager about the Q3 numbers and the hiring plan. "
                      "Thanks to the new process we saved time. Can you shorten it to one paragraph")
    assert short["confidence"] > inside["confidence"]
    # "No." answering the assistant's question is not a correction
    assert classify("No.", answer="Should I also handle None?")["label"] != "DSAT"
    assert classify("No.", answer="def f(): pass")["label"] == "DSAT"
    # a rephrase needs a request to compare with
    assert classify("Write a Python function that reverses a string.", request=None)["category"] != "rephrase"


def _conversation(rid, *turns, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"record_id": rid, "conversation_id": rid, "messages": msgs, "format": "chat"}


def test_chain_pairs_on_crafted_conversations():
    table = from_rows("conversations", [
        _conversation("c:1", "reverse a string in python", "use reversed(s)", "that's wrong, it returns an iterator",
                      "use s[::-1]", "perfect, thanks!", system="be brief"),
        _conversation("c:2", "sum a list", "use a loop", "no, I meant without a loop", "use sum(xs)",
                      "still wrong", "use sum(xs, 0)", "thank you!"),
        _conversation("c:3", "hi", "hello", "continue", "more text", "thanks"),
        _conversation("c:4", "a", "b", "wrong answer again", "b", "perfect"),        # same answer: no pair
        _conversation("c:5", "q", "a1", "that's wrong", "a2", "that's wrong", "a3", "that's wrong", "a4",
                      "that's wrong", "a5", "thanks"),                                   # 4 DSAT > max_chain
        _conversation("c:6", "only one turn"),
    ])
    result = mine_conversations(table, CFG)
    check_contract(table, result)
    pairs = result.pairs.to_pylist()
    by_conv = collections.defaultdict(list)
    for p in pairs:
        by_conv[p["input_ids"][0]].append(p)
    (p1,) = by_conv["c:1"]
    assert [m["content"] for m in p1["prompt"]] == ["be brief", "reverse a string in python"]
    assert (p1["chosen"], p1["rejected"]) == ("use s[::-1]", "use reversed(s)")
    ev = json.loads(p1["evidence"])
    assert (ev["dsat_category"], ev["sat_category"]) == ("correction", "gratitude")
    assert (ev["request_turn"], ev["dsat_turn"], ev["sat_turn"]) == (1, 3, 5)
    assert p1["margin"] == pytest.approx(p1["score_chosen"] - p1["score_rejected"])
    assert p1["weight"] == pytest.approx(min(p1["score_chosen"], -p1["score_rejected"]))
    # two DSAT'd answers, both rejected against the accepted one, same prompt (no complaint in it)
    assert sorted(p["rejected"] for p in by_conv["c:2"]) == ["use a loop", "use sum(xs)"]
    assert {p["chosen"] for p in by_conv["c:2"]} == {"use sum(xs, 0)"}
    assert all(p["prompt"][-1]["content"] == "sum a list" for p in by_conv["c:2"])
    reasons = dict(zip(result.unpaired["record_id"].to_pylist(), result.unpaired["reason"].to_pylist()))
    assert set(reasons) == {"c:3", "c:4", "c:5", "c:6"}
    assert reasons["c:3"] == "conversations: no DSAT→SAT sequence (0 DSAT, 1 SAT turns)"
    assert "equals the rejected" in reasons["c:4"]
    assert reasons["c:5"] == "conversations: DSAT→SAT chain of 4 DSAT turns > max_chain 3"
    assert reasons["c:6"] == "conversations: no user turn follows an assistant turn"
    assert result.signals.num_rows == 2 + 3 + 2 + 2 + 5


@pytest.fixture(scope="module")
def sharegpt():
    table = load("conversations", "sharegpt_multiturn.jsonl.gz")
    return table, mine_conversations(table, CFG)


def _turn(signals, conversation_id, turn_index):
    rows = [s for s in signals if s["conversation_id"] == conversation_id and s["turn_index"] == turn_index]
    assert len(rows) == 1
    return rows[0]


def test_sharegpt_real_turns(sharegpt):
    table, result = sharegpt
    used, _ = check_contract(table, result)
    signals = result.signals.to_pylist()
    dist = collections.Counter((s["label"], s["category"]) for s in signals)
    print("\nShareGPT turn labels:", sorted(dist.items(), key=lambda kv: -kv[1]))
    assert {lab for lab, _ in dist} == {"SAT", "DSAT", "NEUTRAL"}
    assert {cat for _, cat in dist} == {"gratitude", "acceptance", "correction", "complaint", "rephrase",
                                        "continue", "follow_up", "new_topic"}
    assert dist["NEUTRAL", "continue"] > 300          # 'continue' is the most common short turn
    # hand-checked real turns
    cont = _turn(signals, "DGiqvVv_243", 1)                                   # "continue"
    assert (cont["label"], cont["category"]) == ("NEUTRAL", "continue")
    for cid, i in (("RlQPSbw_0", 2), ("7z4ysKF_39", 1)):            # "thank you", "Thank you."
        s = _turn(signals, cid, i)
        assert (s["label"], s["category"]) == ("SAT", "gratitude") and s["confidence"] >= 0.9
    thanks_then_request = _turn(signals, "OjaM9hX_163", 1)   # "thanks! can you help me write another blog?"
    assert thanks_then_request["category"] == "gratitude" and thanks_then_request["confidence"] < 0.9
    for cid, i, cat in (("FApKSLw_35", 3, "correction"),                     # "this is wrong"
                        ("ir3lBPL_31", 11, "correction"),                    # "that is incorrect. in mla format ..."
                        ("Fva9GhV_1", 1, "complaint"),                       # "Your code doesn't work. ..."
                        ("nQCuBM3_0", 4, "complaint")):                      # "I still get the same error"
        s = _turn(signals, cid, i)
        assert (s["label"], s["category"]) == ("DSAT", cat), s


def test_sharegpt_dsat_sat_pairs(sharegpt):
    table, result = sharegpt
    pairs = result.pairs.to_pylist()
    print(f"\nShareGPT DSAT→SAT pairs: {len(pairs)} from {len({p['input_ids'][0] for p in pairs})} conversations")
    assert len(pairs) >= 5
    messages = dict(zip(table["record_id"].to_pylist(), table["messages"].to_pylist()))
    for p in pairs:
        ev = json.loads(p["evidence"])
        conv = messages[p["input_ids"][0]]
        assert p["prompt"] == conv[: ev["request_turn"] + 1]                 # up to the request ...
        assert p["prompt"][-1]["role"] == "user"
        assert ev["dsat_turn"] > ev["request_turn"] and len(p["prompt"]) <= ev["dsat_turn"]  # ... complaint excluded
        assert p["rejected"] == conv[ev["rejected_turn"]]["content"]
        assert p["chosen"] == conv[ev["chosen_turn"]]["content"]
        assert p["score_rejected"] < 0 < p["score_chosen"] and p["signal"] == "dsat_sat"
    # a real chain: "That didn't work - there are still blank lines" then "That worked marvelously! Thank you!"
    (real,) = [p for p in pairs if p["input_ids"] == ["sharegpt_multiturn.jsonl.gz:1546"]]
    ev = json.loads(real["evidence"])
    assert (ev["dsat_category"], ev["sat_category"]) == ("complaint", "gratitude")
    assert ev["sat_text"].startswith("That worked marvelously")


def test_odd_shapes_and_empty_inputs():
    from pipeline.config import SignalsConfig
    from pipeline.schema import empty
    from pipeline.signals import mine_edits, mine_pairwise, mine_ugc

    cfg = SignalsConfig()
    for miner, kind, section in ((mine_conversations, "conversations", cfg.conversations),
                                 (mine_edits, "edits", cfg.edits), (mine_ugc, "ugc", cfg.ugc),
                                 (mine_pairwise, "judgments", cfg.pairwise)):
        result = miner(empty(kind), section)
        assert result.pairs.num_rows == result.unpaired.num_rows == 0
    table = from_rows("conversations", [
        # starts with the assistant: the DSAT'd answer has no request before it
        {"record_id": "o:1", "conversation_id": "1", "format": "chat", "messages": [
            {"role": "assistant", "content": "hi"}, {"role": "user", "content": "that is wrong"},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "thanks"}]},
        {"record_id": "o:2", "conversation_id": "2", "format": "chat", "messages": []},
        # two user messages in a row, two assistant messages in a row
        {"record_id": "o:3", "conversation_id": "3", "format": "chat", "messages": [
            {"role": "user", "content": "q"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a"},
            {"role": "user", "content": "that's wrong"}, {"role": "assistant", "content": "b"},
            {"role": "assistant", "content": "c"}, {"role": "user", "content": "thank you"}]},
    ])
    result = mine_conversations(table.slice(0, 3), CFG)
    check_contract(table, result)
    (pair,) = result.pairs.to_pylist()
    assert ([m["content"] for m in pair["prompt"]], pair["rejected"], pair["chosen"]) == (["q", "q2"], "a", "c")
    reasons = dict(zip(result.unpaired["record_id"].to_pylist(), result.unpaired["reason"].to_pylist()))
    assert reasons["o:1"].endswith("has no user request before it")
