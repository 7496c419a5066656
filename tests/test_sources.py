"""Reading every shipped sample file (data/samples) through the public API."""
from __future__ import annotations

import json
from collections import Counter

import pyarrow.compute as pc
import pytest

from pipeline.schema import schema
from pipeline.sources import SourceBatch, read_file, read_inputs
from sources_fixtures import SAMPLES, cfg

MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())["files"]


@pytest.fixture(scope="module")
def run() -> SourceBatch:
    return read_inputs(sorted(SAMPLES / name for name in MANIFEST), cfg())


def _file(run: SourceBatch, name: str, table: str) -> list[dict]:
    t = run.tables[table]
    return t.filter(pc.starts_with(t["record_id"], name + ":")).to_pylist()


def test_every_record_is_accounted_for(run):
    per_file = Counter(rid.rsplit(":", 1)[0] for rid in run.records["record_id"].to_pylist())
    assert per_file == {name: meta["records"] for name, meta in MANIFEST.items()}
    assert len(set(run.records["record_id"].to_pylist())) == run.records.num_rows
    kept = set()
    for t in run.tables.values():
        kept |= set(t["record_id"].to_pylist())
    quarantined = set(run.quarantine["record_id"].to_pylist())
    assert not kept & quarantined
    assert kept | quarantined == set(run.records["record_id"].to_pylist())


def test_inputs_fingerprints_match_manifest(run):
    for entry in run.inputs:
        name = entry["label"]
        assert entry["sha256"] == MANIFEST[name]["sha256"]
        assert entry["bytes"] == MANIFEST[name]["bytes"]
        assert entry["records"] == MANIFEST[name]["records"]


def test_tables_follow_their_contracts(run):
    assert set(run.tables) == {"conversations", "ugc", "edits", "judgments", "prompts", "rated"}
    for name, t in run.tables.items():
        assert t.schema == schema(name)
        # the samples are logs; prompt files live in data/prompts, rated candidates are tested in test_rated
        assert t.num_rows > 0 or name in ("prompts", "rated")
    assert run.quarantine.schema == schema("quarantine")


def test_sharegpt_conversations_alternate(run):
    convs = _file(run, "sharegpt_multiturn.jsonl.gz", "conversations")
    assert len(convs) == 2000
    for conv in convs:
        roles = [m["role"] for m in conv["messages"] if m["role"] != "system"]
        assert all(a != b for a, b in zip(roles, roles[1:])), conv["conversation_id"]
        assert {"user", "assistant"} <= set(roles)
        assert all(m["content"].strip() for m in conv["messages"])
    assert run.stats["formats"]["sharegpt"] == 2000


def test_stack_exchange_posts_and_comments(run):
    ugc = run.tables["ugc"]
    by_id = {r["post_id"]: r for r in ugc.to_pylist()}
    question = by_id["beer.stackexchange.com/1"]
    assert question["kind"] == "question" and question["title"].startswith("What is a citra hop")
    assert "<p>" not in question["text"] and "citra hops" in question["text"]
    answers = [r for r in by_id.values() if r["parent_id"] == "beer.stackexchange.com/1" and r["kind"] == "answer"]
    assert [a["post_id"] for a in answers if a["accepted"]] == ["beer.stackexchange.com/4"]
    assert by_id["beer.stackexchange.com/4"]["score"] == 13
    assert by_id["beer.stackexchange.com/4"]["thread_id"] == "beer.stackexchange.com/1"
    comments = _file(run, "se_history_meta_comments.jsonl", "ugc")
    assert len(comments) == 1541
    assert all(c["kind"] == "comment" and c["thread_id"] is None for c in comments)
    assert comments[0]["parent_id"] == "history.meta.stackexchange.com/3"
    # every accepted answer is an answer whose question names it
    accepted = ugc.filter(ugc["accepted"]).to_pylist()
    assert accepted and all(a["kind"] == "answer" for a in accepted)


def test_html_keeps_paragraphs_and_code(run):
    texts = _file(run, "se_beer_posts.jsonl", "ugc")
    with_code = [r["text"] for r in texts if "```" in r["text"]]
    assert with_code, "a code block should survive as a fenced block"
    assert any("\n\n" in r["text"] for r in texts)
    assert not any("</p>" in r["text"] or "<br" in r["text"] for r in texts)


def test_pandalm_gives_three_judgments_per_record(run):
    rows = _file(run, "pairwise_pandalm_human.jsonl", "judgments")
    per_record = Counter(r["record_id"] for r in rows)
    assert set(per_record.values()) == {3}
    assert sorted({r["annotator"] for r in rows}) == ["annotator1", "annotator2", "annotator3"]
    assert {r["label"] for r in rows} == {0, 1, 2}
    # the six records whose response is the JSON boolean true, and the one with a blank instruction
    bad = [q for q in run.quarantine.to_pylist() if q["source_file"].endswith("pairwise_pandalm_human.jsonl")]
    assert len(per_record) + len(bad) == MANIFEST["pairwise_pandalm_human.jsonl"]["records"]
    assert Counter(q["error_kind"] for q in bad) == {"wrong_type": 6, "empty_text": 1}
    first = json.loads((SAMPLES / "pairwise_pandalm_human.jsonl").open().readline())
    row = next(r for r in rows if r["record_id"] == "pairwise_pandalm_human.jsonl:1")
    expected = first["instruction"] + ("\n\n" + first["input"] if first["input"] else "")
    assert row["prompt"] == [{"role": "user", "content": expected}]


def test_lamp_rankings_three_pairs_per_record(run):
    rows = _file(run, "lamp_expert_rankings.jsonl", "judgments")
    assert Counter(Counter(r["record_id"] for r in rows).values()) == {3: 285}
    first = json.loads((SAMPLES / "lamp_expert_rankings.jsonl").open().readline())
    best = first["ranking_best_to_worst"][0]
    best_text = next(x["text"] for x in first["responses"] if x["label"] == best)
    wins = [r for r in rows if r["record_id"] == "lamp_expert_rankings.jsonl:1"
            and best_text in (r["response_a"], r["response_b"])]
    assert len(wins) == 2
    assert all((r["label"] == 1) == (r["response_a"] == best_text) for r in wins)
    assert all(r["annotator"] == first["annotator"] for r in wins)


def test_wqrm_three_pairs_per_expert(run):
    rows = _file(run, "wqrm_expert_rankings.jsonl", "judgments")
    experts = sum(len(json.loads(x)["annotations"]) for x in (SAMPLES / "wqrm_expert_rankings.jsonl").open())
    assert len(rows) == 3 * experts
    assert all(r["prompt"][0]["content"].startswith("Write a ") and "plot" in r["prompt"][0]["content"] for r in rows)


def test_edits_lamp_and_r3(run):
    lamp = _file(run, "lamp_edits.jsonl", "edits")
    assert len(lamp) == 178 and all(r["original"] != r["edited"] for r in lamp)
    assert {r["editor"] for r in lamp} >= {"W3", "W12", "W16", None}
    r3 = _file(run, "r3_human_in_the_loop_revisions.jsonl", "edits")
    assert len({r["record_id"] for r in r3}) == 25
    assert len({r["edit_id"] for r in r3}) == len(r3) > 25       # several depths per document
    assert any(r["original"] != r["edited"] for r in r3)
    assert {r["editor"] for r in r3} == {"ann1", "ann2", "ann3"}
    assert all(r["prompt"][0]["content"].startswith("Revise the following text to improve it:\n\n") for r in r3)


def test_pii_is_scrubbed_in_samples(run):
    scrubbed = run.stats["pii_scrubbed"]
    assert scrubbed["email"] > 0 and scrubbed["phone"] > 0
    texts = [m["content"] for ms in run.tables["conversations"]["messages"].to_pylist() for m in ms]
    assert any("[EMAIL]" in t for t in texts)
    assert not any("tana.schiewer@gmail.com" in t for t in texts)


def test_read_file_alone_matches_manifest():
    batch = read_file(SAMPLES / "se_beer_posts.jsonl", cfg(), label="beer")
    assert batch.records.num_rows == MANIFEST["se_beer_posts.jsonl"]["records"]
    assert batch.records["record_id"][0].as_py() == "beer:1"
    assert batch.quarantine.num_rows == 0
    assert batch.stats["formats"] == {"se_post": 1174}
