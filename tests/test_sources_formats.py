"""Every record format, every container (JSONL, JSON array, gzip by magic bytes, Parquet), labels."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.sources import merge, read_file, read_inputs
from sources_fixtures import (ALL, CHAT, EDIT, LAMP_EDIT, LAMP_RANKING, PAIRWISE, PROMPT, PROMPT_CHAT, R3, SE_ANSWER, SE_COMMENT, SE_QUESTION,
                              SHAREGPT, THREAD, WILDCHAT, WQRM, cfg, quarantined, rows, write_lines)


def test_mixed_file_every_format(tmp_path):
    batch = read_file(write_lines(tmp_path / "mixed.jsonl", ALL), cfg())
    assert quarantined(batch) == []
    assert batch.records.num_rows == len(ALL)
    assert batch.stats["formats"] == {"sharegpt": 1, "chat": 1, "wildchat": 1, "se_post": 2, "se_comment": 1,
                                      "thread": 1, "lamp": 1, "r3": 1, "edit": 1, "pandalm": 1, "pairwise": 1,
                                      "lamp_ranking": 1, "wqrm": 1, "prompt": 1}
    assert {t: len(rows(batch, t)) for t in batch.tables} == {"conversations": 3, "ugc": 3 + 4, "edits": 3,
                                                              "judgments": 3 + 3 + 3 + 3, "prompts": 1, "rated": 0}


def test_prompt_records_text_or_chat_ending_with_a_user_turn(tmp_path):
    """A chat prompt without a final user turn is a conversation log, not a prompt: with a
    `messages` key it is read as a chat log; a `prompt` chat ending with an answer is quarantined."""
    bad = {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
    batch = read_file(write_lines(tmp_path / "p.jsonl", [PROMPT, {"prompt": PROMPT_CHAT["messages"]}, bad]), cfg())
    assert [r["prompt"] for r in rows(batch, "prompts")] == [[{"role": "user", "content": "Name a prime number."}],
                                                             PROMPT_CHAT["messages"]]
    assert [(q["line"], q["error_kind"]) for q in quarantined(batch)] == [(3, "bad_role")]


def test_conversation_formats(tmp_path):
    batch = read_file(write_lines(tmp_path / "c.jsonl", [SHAREGPT, CHAT, WILDCHAT,
                                                         {"messages": CHAT["messages"][1:]}]), cfg())
    convs = rows(batch, "conversations")
    assert [c["conversation_id"] for c in convs] == ["sg1", "c1", "wc1", "c.jsonl:4"]
    assert convs[1]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                    {"role": "assistant", "content": "Hello!"}]
    assert [c["format"] for c in convs] == ["sharegpt", "chat", "wildchat", "chat"]


def test_empty_turns_dropped_and_same_role_merged(tmp_path):
    rec = {"id": "m", "conversations": [{"from": "human", "value": "part one"}, {"from": "human", "value": ""},
                                        {"from": "user", "value": "part two"}, {"from": "chatgpt", "value": "ok"}]}
    batch = read_file(write_lines(tmp_path / "c.jsonl", [rec]), cfg())
    (conv,) = rows(batch, "conversations")
    assert conv["messages"] == [{"role": "user", "content": "part one\n\npart two"},
                                {"role": "assistant", "content": "ok"}]
    assert batch.stats["normalized"] == {"empty_turns_dropped": 1, "same_role_turns_merged": 1}


def test_stack_exchange_rows(tmp_path):
    # the answer comes before its question: acceptance is resolved after reading
    batch = read_file(write_lines(tmp_path / "se.jsonl", [SE_ANSWER, SE_COMMENT, SE_QUESTION]), cfg())
    by_kind = {r["kind"]: r for r in rows(batch, "ugc")}
    q, a, c = by_kind["question"], by_kind["answer"], by_kind["comment"]
    assert (q["post_id"], q["thread_id"], q["parent_id"], q["score"]) == ("q.example.com/10", "q.example.com/10", None, 5)
    assert q["text"] == "How do I `x`?\n\n```\nx = 1\ny = 2\n```"
    assert (a["post_id"], a["parent_id"], a["thread_id"], a["accepted"]) == ("q.example.com/12", "q.example.com/10",
                                                                            "q.example.com/10", True)
    assert a["text"] == "First.\n\nSecond paragraph."
    assert (c["parent_id"], c["thread_id"], c["score"]) == ("q.example.com/12", None, 1)


def test_accepted_answer_across_files(tmp_path):
    write_lines(tmp_path / "answers.jsonl", [SE_ANSWER])
    write_lines(tmp_path / "questions.jsonl", [SE_QUESTION])
    separate = [read_file(tmp_path / "answers.jsonl", cfg()), read_file(tmp_path / "questions.jsonl", cfg())]
    assert not any(r["accepted"] for r in rows(separate[0], "ugc"))
    merged = merge(separate)
    assert [r["post_id"] for r in rows(merged, "ugc") if r["accepted"]] == ["q.example.com/12"]
    assert rows(merge([merged]), "ugc") == rows(merged, "ugc")           # merging again changes nothing


def test_generic_thread(tmp_path):
    ugc = rows(read_file(write_lines(tmp_path / "t.jsonl", [THREAD]), cfg()), "ugc")
    assert [(r["post_id"], r["kind"], r["parent_id"], r["accepted"]) for r in ugc] == [
        ("t1", "question", None, False), ("t1/a1", "answer", "t1", True), ("t1/a1/c1", "comment", "t1/a1", False),
        ("t1/x", "answer", "t1", False)]
    assert ugc[0]["title"] == "Best tea?" and ugc[3]["score"] == 1


def test_edit_formats(tmp_path):
    edits = rows(read_file(write_lines(tmp_path / "e.jsonl", [LAMP_EDIT, R3, EDIT, dict(EDIT, id="e2", context="Hi")]),
                           cfg()), "edits")
    assert [e["edit_id"] for e in edits] == ["W3_reannotation_9", "ann9:d1-depth-1:depth1", "e1", "e2"]
    lamp, r3, generic, plain = edits
    assert lamp["editor"] == "W3" and lamp["prompt"] == [{"role": "user", "content": "Write about a picnic."}]
    assert (r3["original"], r3["edited"], r3["editor"]) == ("The txt.", "The text.", "ann9")
    assert r3["prompt"][0]["content"] == "Revise the following text to improve it:\n\nTeh text."
    assert generic["prompt"] == [{"role": "user", "content": "Summarize it."}] and generic["editor"] is None
    assert plain["prompt"] == [{"role": "user", "content": "Hi"}]


def test_judgment_formats(tmp_path):
    batch = read_file(write_lines(tmp_path / "j.jsonl", [PAIRWISE, LAMP_RANKING, WQRM]), cfg())
    pairwise = [r for r in rows(batch, "judgments") if r["format"] == "pairwise"]
    assert [(r["label"], r["annotator"]) for r in pairwise] == [(1, "u1"), (0, "u2"), (2, "u3")]
    ranking = [(r["response_a"], r["response_b"], r["label"]) for r in rows(batch, "judgments")
               if r["format"] == "lamp_ranking"]
    assert ranking == [("one", "two", 1), ("one", "three", 2), ("two", "three", 2)]
    wqrm = [r for r in rows(batch, "judgments") if r["format"] == "wqrm"]
    assert [(r["response_a"], r["response_b"], r["label"]) for r in wqrm] == [
        ("draft one", "draft two", 2), ("draft one", "draft three", 2), ("draft two", "draft three", 2)]
    assert wqrm[0]["prompt"][0]["content"] == ("Write a fiction piece of about 50 words in the first person, "
                                               "based on this plot:\n\nA cat travels.")


def test_json_array_file(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([SHAREGPT, THREAD, PAIRWISE], indent=2))
    batch = read_file(path, cfg())
    assert batch.records["line"].to_pylist() == [1, 2, 3]
    assert [r["record_id"] for r in rows(batch, "conversations")] == ["arr.json:1"]
    assert quarantined(batch) == []


def test_pretty_printed_single_object(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(SHAREGPT, indent=2))
    batch = read_file(path, cfg())
    assert [r["record_id"] for r in rows(batch, "conversations")] == ["one.json:1"]


def test_broken_json_array_quarantines_from_the_bad_element(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text("[" + json.dumps(SHAREGPT) + ', {"id": oops}, ' + json.dumps(CHAT) + "]")
    batch = read_file(path, cfg())
    assert [(q["error_kind"], q["line"]) for q in quarantined(batch)] == [("invalid_json", 2)]
    assert len(rows(batch, "conversations")) == 1


def test_gzip_found_by_magic_bytes(tmp_path):
    path = tmp_path / "no_extension"
    path.write_bytes(gzip.compress(b"\n".join(json.dumps(r).encode() for r in [SHAREGPT, CHAT])))
    assert len(rows(read_file(path, cfg()), "conversations")) == 2
    arr = tmp_path / "arr.json.gz"
    arr.write_bytes(gzip.compress(json.dumps([SHAREGPT, CHAT]).encode()))
    assert len(rows(read_file(arr, cfg()), "conversations")) == 2


def test_parquet_file(tmp_path):
    table = pa.Table.from_pylist([
        {"id": "p1", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"id": "p2", "messages": [{"role": "user", "content": "only me"}]},
        {"id": "p3", "messages": None},
    ])
    pq.write_table(table, tmp_path / "chats.parquet")
    batch = read_file(tmp_path / "chats.parquet", cfg())
    assert [r["conversation_id"] for r in rows(batch, "conversations")] == ["p1"]
    assert [(q["error_kind"], q["line"]) for q in quarantined(batch)] == [("bad_role", 2), ("unknown_format", 3)]
    assert json.loads(quarantined(batch)[0]["raw"])["id"] == "p2"
    assert batch.records["line"].to_pylist() == [1, 2, 3]


def test_labels_unique_when_basenames_clash(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_lines(tmp_path / folder / "data.jsonl", [dict(SHAREGPT, id=f"id-{folder}")])
    batch = read_inputs([tmp_path / "a" / "data.jsonl", tmp_path / "b" / "data.jsonl"], cfg())
    assert batch.records["record_id"].to_pylist() == ["a/data.jsonl:1", "b/data.jsonl:1"]
    assert [i["label"] for i in batch.inputs] == ["a/data.jsonl", "b/data.jsonl"]


def test_blank_lines_and_bom(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(SHAREGPT).encode() + b"\n\n  \n" + json.dumps(CHAT).encode() + b"\r\n")
    batch = read_file(path, cfg())
    assert batch.records["line"].to_pylist() == [1, 4]
    assert quarantined(batch) == []


def test_scrub_off_keeps_text(tmp_path):
    rec = dict(PAIRWISE, response_a="mail me: jane@corp.example.org")
    on = rows(read_file(write_lines(tmp_path / "a.jsonl", [rec]), cfg()), "judgments")
    off = rows(read_file(tmp_path / "a.jsonl", cfg(scrub_pii=False)), "judgments")
    assert on[0]["response_a"] == "mail me: [EMAIL]" and off[0]["response_a"] == rec["response_a"]
