"""The ledger accounts for every input record: kept beats filtered, a filter's reason beats a
signal's 'no pair' reason, whole-file quarantine rows count, and ids never collide."""
import pyarrow as pa
import pytest

from pair_rows import raw_pair, raw_table
from pipeline.config import CurateConfig, SourcesConfig
from pipeline.filters import apply_filters
from pipeline.ledger import build_ledger
from pipeline.pairs import build_pairs, finalize
from pipeline.schema import from_rows
from pipeline.sources import read_file


def _records(*ids):
    return pa.table({"record_id": list(ids), "source_file": ["f"] * len(ids),
                     "line": [int(i.split(":")[1]) for i in ids]})


def _lineage(rows):
    cfg = CurateConfig().filters
    cfg.dedup.semantic = False
    cands = build_pairs(raw_table(rows))
    apply_filters(cands, cfg)
    return finalize(cands)[1]


def test_status_precedence_and_reasons():
    lineage = _lineage([
        raw_pair("q1", "good", "bad", ids=["f:1", "f:2"]),               # kept
        raw_pair("q2", "fine answer", "worse answer", margin=0.0, ids=["f:2", "f:3"]),  # margin-dropped
        raw_pair("q3", "same", "same", ids=["f:4"]),                       # tie rule
    ])
    unpaired = from_rows("unpaired", [{"record_id": "f:3", "reason": "x: signal reason"},
                                      {"record_id": "f:5", "reason": "edits: no change (d=0)"}])
    quarantine = from_rows("quarantine", [
        dict(record_id="g:0", source_file="g", line=0, error_kind="unreadable_file", message="gone", raw=None)])
    ledger, summary = build_ledger(_records("f:1", "f:2", "f:3", "f:4", "f:5", "f:6"), quarantine, lineage, unpaired)
    status = {r["record_id"]: (r["status"], r["reason"]) for r in ledger.to_pylist()}
    assert status["f:1"] == ("kept", None)
    assert status["f:2"] == ("kept", None)  # in a kept and in a dropped pair: kept wins
    assert status["f:3"] == ("filtered", "margin: margin 0 < 0.05 for edit")  # the filter's reason wins
    assert status["f:4"] == ("filtered", "tie_rule: chosen equals rejected after whitespace normalization")
    assert status["f:5"] == ("filtered", "edits: no change (d=0)")
    assert status["f:6"] == ("filtered", "no signal made a pair from this record")
    assert status["g:0"] == ("quarantined", "unreadable_file: gone")
    assert (summary["inputs"], summary["kept"], summary["filtered"], summary["quarantined"], summary["pairs"]) == (7, 2, 4, 1, 1)
    assert summary["filtered_reasons"]["edits: no change"] == 1  # details in parentheses grouped away


def test_duplicate_record_ids_are_refused():
    with pytest.raises(ValueError, match="not unique"):
        build_ledger(_records("f:1", "f:1"), from_rows("quarantine", []), _lineage([]), from_rows("unpaired", []))


def test_two_json_documents_on_one_line_are_two_records(tmp_path):
    path = tmp_path / "two.json"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]} '
                    '{"messages": [{"role": "user", "content": "yo"}, {"role": "assistant", "content": "hey"}]}\n')
    batch = read_file(path, SourcesConfig())
    assert batch.records.num_rows == 2 and len(set(batch.records["record_id"].to_pylist())) == 2
