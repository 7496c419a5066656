"""One crafted bad input per quarantine kind: the right kind, the right line, good lines still read."""
from __future__ import annotations

import copy
import gzip
import json
import os


from pipeline.sources import read_file, read_inputs
from sources_fixtures import CHAT, EDIT, PANDALM, SE_ANSWER, SE_QUESTION, SHAREGPT, cfg, quarantined, rows, write_lines


def _only(batch) -> dict:
    (q,) = quarantined(batch)
    return q


def _assert_rest_read(batch, n_good: int, table: str = "conversations"):
    """n_good records were normalized into `table`; every record read is there or in quarantine."""
    assert len({r["record_id"] for r in rows(batch, table)}) == n_good
    assert batch.records.num_rows == n_good + batch.quarantine.num_rows


def _sharegpt(i: int) -> dict:
    rec = copy.deepcopy(SHAREGPT)
    rec["id"] = f"sg{i}"
    return rec


def test_invalid_json_line(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [_sharegpt(1), b'{"id": "x", "conversations": [', _sharegpt(3)])
    batch = read_file(path, cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"], q["record_id"]) == ("invalid_json", 2, "a.jsonl:2")
    assert q["raw"] == b'{"id": "x", "conversations": ['
    assert q["source_file"] == str(path)
    _assert_rest_read(batch, 2)


def test_bad_encoding(tmp_path):
    bad = b'{"id": "x", "conversations": [{"from": "human", "value": "caf\xe9"}]}'
    path = write_lines(tmp_path / "a.jsonl", [_sharegpt(1), bad, _sharegpt(3)])
    batch = read_file(path, cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"]) == ("bad_encoding", 2)
    assert "UTF-8" in q["message"] and q["raw"] == bad
    _assert_rest_read(batch, 2)


def test_json_array_of_non_objects(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([_sharegpt(1), [1, 2], "text", _sharegpt(4)], indent=1))
    batch = read_file(path, cfg())
    kinds = [(q["error_kind"], q["line"]) for q in quarantined(batch)]
    assert kinds == [("not_an_object", 2), ("not_an_object", 3)]
    assert "got array" in quarantined(batch)[0]["message"]
    assert [r["record_id"] for r in rows(batch, "conversations")] == ["a.json:1", "a.json:4"]


def test_unknown_format_names_the_keys(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [_sharegpt(1), {"foo": 1, "bar": 2}])
    q = _only(read_file(path, cfg()))
    assert (q["error_kind"], q["line"]) == ("unknown_format", 2)
    assert "bar, foo" in q["message"]


def test_missing_value(tmp_path):
    bad = {"id": "x", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt"}]}
    path = write_lines(tmp_path / "a.jsonl", [bad, _sharegpt(2)])
    batch = read_file(path, cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"]) == ("missing_field", 1)
    assert "conversations[1].value" in q["message"]
    _assert_rest_read(batch, 1)


def test_wrong_type(tmp_path):
    bad = dict(PANDALM, response1=True)
    path = write_lines(tmp_path / "a.jsonl", [PANDALM, bad])
    batch = read_file(path, cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"]) == ("wrong_type", 2)
    assert "response1" in q["message"] and "boolean" in q["message"]
    _assert_rest_read(batch, 1, "judgments")
    assert len(rows(batch, "judgments")) == 3


def test_empty_text(tmp_path):
    bad = {"id": "x", "conversations": [{"from": "human", "value": "  "}, {"from": "gpt", "value": ""}]}
    empty_edit = dict(EDIT, id="e2", edited="   ")
    path = write_lines(tmp_path / "a.jsonl", [_sharegpt(1), bad, EDIT, empty_edit])
    batch = read_file(path, cfg())
    assert [(q["error_kind"], q["line"]) for q in quarantined(batch)] == [("empty_text", 2), ("empty_text", 4)]
    assert "edited is empty" in quarantined(batch)[1]["message"]
    assert len(rows(batch, "conversations")) == 1 and len(rows(batch, "edits")) == 1


def test_bad_role(tmp_path):
    unknown = {"id": "x", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "{}"}]}
    no_reply = {"id": "y", "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]}
    path = write_lines(tmp_path / "a.jsonl", [unknown, CHAT, no_reply])
    batch = read_file(path, cfg())
    found = quarantined(batch)
    assert [(q["error_kind"], q["line"]) for q in found] == [("bad_role", 1), ("bad_role", 3)]
    assert "'tool'" in found[0]["message"] and "no assistant turn" in found[1]["message"]
    _assert_rest_read(batch, 1)


def test_oversized_record_and_text(tmp_path):
    big = _sharegpt(2)
    big["conversations"][0]["value"] = "x" * 5000
    long_text = _sharegpt(3)
    long_text["conversations"][1]["value"] = "y" * 300
    path = write_lines(tmp_path / "a.jsonl", [_sharegpt(1), big, long_text])
    batch = read_file(path, cfg(max_record_bytes=2000, max_text_chars=200))
    found = quarantined(batch)
    assert [(q["error_kind"], q["line"]) for q in found] == [("oversized", 2), ("oversized", 3)]
    assert "max_record_bytes" in found[0]["message"] and "conversations[1].value" in found[1]["message"]
    _assert_rest_read(batch, 1)


def test_duplicate_id_across_two_files(tmp_path):
    write_lines(tmp_path / "one.jsonl", [_sharegpt(1), _sharegpt(2), SE_QUESTION])
    write_lines(tmp_path / "two.jsonl", [_sharegpt(3), _sharegpt(2), dict(SE_QUESTION, Score="99"), SE_ANSWER])
    batch = read_inputs([tmp_path / "one.jsonl", tmp_path / "two.jsonl"], cfg())
    found = quarantined(batch)
    assert [(q["record_id"], q["error_kind"]) for q in found] == [("two.jsonl:2", "duplicate_id"),
                                                                  ("two.jsonl:3", "duplicate_id")]
    assert "one.jsonl:2" in found[0]["message"] and json.loads(found[0]["raw"])["id"] == "sg2"
    assert sorted(r["conversation_id"] for r in rows(batch, "conversations")) == ["sg1", "sg2", "sg3"]
    question = next(r for r in rows(batch, "ugc") if r["kind"] == "question")
    assert question["score"] == 5                                         # the first one is kept
    assert batch.records.num_rows == 7


def test_duplicate_id_within_one_file(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [_sharegpt(1), _sharegpt(1)])
    q = _only(read_file(path, cfg()))
    assert (q["error_kind"], q["line"]) == ("duplicate_id", 2)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(64))
    good = write_lines(tmp_path / "b.jsonl", [_sharegpt(1)])
    batch = read_inputs([path, good], cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"], q["record_id"]) == ("unreadable_file", 0, "a.jsonl.gz:0")
    assert "gzip" in q["message"]
    assert len(rows(batch, "conversations")) == 1


def test_truncated_gzip_keeps_the_lines_before(tmp_path):
    data = gzip.compress(b"\n".join(json.dumps(_sharegpt(i)).encode() for i in range(200)))
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    batch = read_file(path, cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"]) == ("unreadable_file", 0)
    assert 0 < len(rows(batch, "conversations")) < 200
    assert batch.records.num_rows == len(rows(batch, "conversations")) + 1


def test_missing_file(tmp_path):
    good = write_lines(tmp_path / "b.jsonl", [_sharegpt(1)])
    batch = read_inputs([tmp_path / "nope.jsonl", good], cfg())
    q = _only(batch)
    assert (q["error_kind"], q["line"]) == ("unreadable_file", 0)
    assert "not found" in q["message"] and q["raw"] is None
    assert batch.inputs[0]["sha256"] is None and batch.inputs[1]["records"] == 1
    assert len(rows(batch, "conversations")) == 1


def test_path_that_cannot_be_opened_as_a_file(tmp_path):
    """An OS-level open failure (here a directory; permission errors take the same path, but
    root ignores permissions) is one unreadable_file row, not a crash."""
    path = tmp_path / "a.jsonl"
    path.mkdir()
    q = _only(read_file(path, cfg()))
    assert (q["error_kind"], q["line"]) == ("unreadable_file", 0)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"PAR1" + b"garbage" * 10)
    q = _only(read_file(path, cfg()))
    assert (q["error_kind"], q["line"]) == ("unreadable_file", 0)


def test_no_readable_record_does_not_crash(tmp_path):
    batch = read_inputs([tmp_path / "missing.jsonl"], cfg())
    assert batch.records.num_rows == 1 and all(t.num_rows == 0 for t in batch.tables.values())
    empty = read_inputs([], cfg())
    assert empty.records.num_rows == 0 and empty.quarantine.num_rows == 0


def test_raw_is_capped(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [b"[" + b"1," * 50_000 + b"1]"])
    q = _only(read_file(path, cfg()))
    assert q["error_kind"] == "not_an_object" and len(q["raw"]) == 64 * 1024


def _mutations(record):
    """The record with each field (top level, and inside its first nested object) deleted or retyped."""
    values = [None, 0, 1.5, "", "x", [], [1], {}, True]
    for key in list(record):
        gone = copy.deepcopy(record)
        del gone[key]
        yield gone
        for v in values:
            yield {**copy.deepcopy(record), key: v}
        inner = record[key]
        inner = inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], dict) else inner
        if isinstance(inner, dict):
            for sub in inner:
                for v in values:
                    changed = copy.deepcopy(record)
                    target = changed[key][0] if isinstance(changed[key], list) else changed[key]
                    target[sub] = v
                    yield changed


def test_no_malformed_record_stops_the_file(tmp_path, reliability):
    from sources_fixtures import ALL
    records = [m for rec in ALL for m in _mutations(rec)]
    path = write_lines(tmp_path / "fuzz.jsonl", records)
    batch = read_file(path, cfg())
    assert batch.records.num_rows == len(records)
    kept = set()
    for t in batch.tables.values():
        kept |= set(t["record_id"].to_pylist())
    assert len(kept) + batch.quarantine.num_rows == len(records)
    reliability("Malformed records", "every field of every sample record removed, nulled or retyped, in one file",
                len(records), len(kept) + batch.quarantine.num_rows, len(records) - len(kept) - batch.quarantine.num_rows)
    assert set(batch.quarantine["error_kind"].to_pylist()) <= {
        "missing_field", "wrong_type", "empty_text", "bad_role", "unknown_format", "duplicate_id", "oversized"}
