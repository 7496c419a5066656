"""Rated candidates: the column-wise reader (UltraFeedback raw and prompt + candidates, detected
from the file) and the ratings signal's pairing policies, on real samples recast in those formats
(tests/rated_files.py) and on the benchmark's synthetic UltraFeedback file, checked against a plain
Python implementation of each policy written here."""
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cli_helpers import last_json, run
from pipeline.config import RatingsSignalConfig, SourcesConfig
from pipeline.signals.ratings import mine_ratings
from pipeline.sources import read_file
from rated_files import SAMPLES, inject_faults, lamp_as_ultrafeedback, pandalm_as_candidates, write

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import rated_synth  # noqa: E402

WS = re.compile(r"[\t\n\f\r ]+")


def norm(text: str) -> str:
    return WS.sub(" ", text).strip(" ")


@pytest.fixture(scope="module")
def lamp_faulty(tmp_path_factory):
    lines, expected = inject_faults(lamp_as_ultrafeedback())
    path = write(tmp_path_factory.mktemp("rated") / "lamp_uf.jsonl", lines)
    return path, lines, expected, read_file(path, SourcesConfig(), "lamp_uf.jsonl")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = rated_synth.write(tmp_path_factory.mktemp("synth") / "uf_3000.jsonl", 3000)
    return path, read_file(path, SourcesConfig(), "uf_3000.jsonl")


def test_every_candidate_is_read_or_quarantined_alone_with_its_reason(lamp_faulty):
    path, lines, expected, batch = lamp_faulty
    records = [json.loads(x) for x in lines[:285]]
    n_candidates = sum(len(r["completions"]) for r in records)
    bad_lines = [k for k in expected if "#" not in k]
    rated = batch.tables["rated"]
    assert batch.records.num_rows == n_candidates + len(bad_lines)  # the blank line is no record
    assert rated.num_rows == n_candidates - sum("#" in k for k in expected)
    got = {q["record_id"].split(":", 1)[1]: (q["error_kind"], q["message"]) for q in batch.quarantine.to_pylist()}
    assert set(got) == set(expected)
    for key, (kind, words) in expected.items():
        assert got[key][0] == kind and words in got[key][1], (key, got[key])
    # the siblings of a bad candidate are still there, with the record's real texts and scores
    first = {r["candidate"]: r for r in rated.to_pylist() if r["prompt_key"] == "lamp_uf.jsonl:1"}
    assert set(first) == {1, 3}
    assert first[1]["response"] == records[0]["completions"][0]["response"]
    assert first[3]["score"] == records[0]["completions"][2]["fine-grained_score"]
    assert first[1]["prompt"] == [{"role": "user", "content": records[0]["instruction"]}]
    quarantined_raw = {q["record_id"]: q["raw"] for q in batch.quarantine.to_pylist()}
    assert json.loads(quarantined_raw["lamp_uf.jsonl:2#1"])["fine-grained_score"] == "N/A"  # the candidate itself


def test_generic_form_reads_real_pandalm_with_its_real_faults(tmp_path):
    path = write(tmp_path / "pandalm.jsonl", [json.dumps(r) for r in pandalm_as_candidates()])
    batch = read_file(path, SourcesConfig(), "pandalm.jsonl")
    kinds = Counter(q["error_kind"] for q in batch.quarantine.to_pylist())
    raw = [json.loads(x) for x in (SAMPLES / "pairwise_pandalm_human.jsonl").read_text().splitlines()]
    empty = sum(isinstance(r[k], str) and not r[k].strip() for r in raw for k in ("response1", "response2"))
    empty_prompts = sum(not (r["instruction"] + r["input"]).strip() for r in raw)
    # the sample really holds `true` as six responses, empty responses and an empty instruction
    assert kinds == {"wrong_type": 6, "empty_text": empty + empty_prompts} and empty > 0, kinds
    assert all("response: expected a string, got boolean" in q["message"]
               for q in batch.quarantine.to_pylist() if q["error_kind"] == "wrong_type")
    rated = batch.tables["rated"]
    assert set(rated["format"].to_pylist()) == {"candidates"}
    assert batch.records.num_rows == rated.num_rows + batch.quarantine.num_rows


def naive_pairs(rated, policy: str) -> set[tuple[str, str]]:
    """The policy done by hand in Python, from the reader's rows (the reference for the SQL)."""
    groups = defaultdict(list)
    for r in rated.to_pylist():
        groups[r["prompt_key"]].append(r)
    out = set()
    for cands in groups.values():
        best = max(cands, key=lambda c: (c["score"], -c["candidate"]))
        lower = [c for c in cands if c["score"] < best["score"] and norm(c["response"]) != norm(best["response"])]
        if policy == "best_vs_worst" and lower:
            worst = min(lower, key=lambda c: (c["score"], -c["candidate"]))
            out.add((best["record_id"], worst["record_id"]))
        if policy == "all_pairs":
            out |= {(h["record_id"], lo["record_id"]) for h in cands for lo in cands
                    if h["score"] > lo["score"] and norm(h["response"]) != norm(lo["response"])}
    return out


def pair_ids(result) -> set[tuple[str, str]]:
    return {tuple(ids) for ids in result.pairs["input_ids"].to_pylist()}


@pytest.mark.parametrize("policy", ["best_vs_worst", "all_pairs"])
def test_policies_match_a_plain_python_implementation(policy, lamp_faulty, synthetic):
    for batch in (lamp_faulty[3], synthetic[1]):
        rated = batch.tables["rated"]
        result = mine_ratings(rated, RatingsSignalConfig(policy=policy))
        assert pair_ids(result) == naive_pairs(rated, policy)
        # every candidate is in a pair or has a reason, never both
        paired = {i for ids in pair_ids(result) for i in ids}
        unpaired = set(result.unpaired["record_id"].to_pylist())
        assert paired.isdisjoint(unpaired) and paired | unpaired == set(rated["record_id"].to_pylist())


def test_tie_rule_holds_inside_every_policy(synthetic):
    rated = synthetic[1].tables["rated"]
    by_id = {r["record_id"]: r for r in rated.to_pylist()}
    for policy in ("best_vs_worst", "best_vs_random", "all_pairs"):
        pairs = mine_ratings(rated, RatingsSignalConfig(policy=policy)).pairs.to_pylist()
        assert pairs
        for p in pairs:
            hi, lo = (by_id[i] for i in p["input_ids"])
            assert p["score_chosen"] == hi["score"] > lo["score"] == p["score_rejected"]
            assert norm(p["chosen"]) != norm(p["rejected"])
    reasons = Counter(r.split(" (")[0].split(" at ")[0]
                      for r in mine_ratings(rated, RatingsSignalConfig()).unpaired["reason"].to_pylist())
    assert reasons["ratings: all 4 candidates tie"] > 0          # the synthetic ties
    assert reasons["ratings: repeats the text of the best candidate"] > 0  # and duplicate texts


def test_best_vs_random_is_a_seeded_draw_among_lower_rated(synthetic, tmp_path):
    path, batch = synthetic
    rated = batch.tables["rated"]
    a = mine_ratings(rated, RatingsSignalConfig(policy="best_vs_random", seed=1))
    again = mine_ratings(rated, RatingsSignalConfig(policy="best_vs_random", seed=1))
    other = mine_ratings(rated, RatingsSignalConfig(policy="best_vs_random", seed=2))
    assert pair_ids(a) == pair_ids(again)
    assert {c for c, _ in pair_ids(a)} == {c for c, _ in naive_pairs(rated, "best_vs_worst")}  # chosen = the best
    changed = len(pair_ids(a) - pair_ids(other))
    assert 0 < changed < len(pair_ids(a))
    worst = pair_ids(mine_ratings(rated, RatingsSignalConfig()))
    assert len(pair_ids(a) - worst) > len(pair_ids(a)) // 4  # not just the worst one again
    # the draw depends on content, not on where the file lives or what it is called
    renamed = path.rename(tmp_path / "renamed.jsonl")
    moved = mine_ratings(read_file(renamed, SourcesConfig(), "renamed.jsonl").tables["rated"],
                         RatingsSignalConfig(policy="best_vs_random", seed=1))
    assert {(p["chosen"], p["rejected"]) for p in moved.pairs.to_pylist()} == \
        {(p["chosen"], p["rejected"]) for p in a.pairs.to_pylist()}
    renamed.rename(path)


def test_score_field_is_configurable(lamp_faulty):
    path = lamp_faulty[0]
    overall = read_file(path, SourcesConfig(rated_score="overall_score"), "x").tables["rated"]
    # with overall_score, the injected fine-grained faults are no faults: only the response ones remain
    assert overall.num_rows == lamp_faulty[3].tables["rated"].num_rows + 4
    pairs = mine_ratings(overall, RatingsSignalConfig(), "overall_score").pairs.to_pylist()
    assert {p["annotator"] for p in pairs} == {"ratings:overall_score"}


def test_curate_accounts_for_every_candidate(lamp_faulty, tmp_path, reliability):
    path, lines, expected, batch = lamp_faulty
    generic = write(tmp_path / "pandalm.jsonl", [json.dumps(r) for r in pandalm_as_candidates()])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("signals: {ratings: {policy: all_pairs}}\nfilters: {min_margin: {ratings: 1.5}}\n")
    out = last_json(run("curate", str(path), str(generic), "-d", "rated", "-c", str(cfg), "-w", str(tmp_path / "ws"),
                        "--json"))
    version = Path(out["path"])
    ledger = pq.read_table(version / "ledger.parquet").to_pylist()
    generic_records = read_file(generic, SourcesConfig(), "pandalm.jsonl").records.num_rows
    assert len(ledger) == out["inputs"] == batch.records.num_rows + generic_records
    assert out["inputs"] == out["kept"] + out["filtered"] + out["quarantined"]
    status = {r["record_id"]: (r["status"], r["reason"]) for r in ledger}
    for key, (kind, _) in expected.items():
        assert status[f"lamp_uf.jsonl:{key}"][0] == "quarantined" and status[f"lamp_uf.jsonl:{key}"][1].startswith(kind)
    pairs = pq.read_table(version / "pairs.parquet").to_pylist()
    assert pairs and all(p["margin"] >= 1.5 for p in pairs if p["source"] == "rated")
    lineage = pq.read_table(version / "lineage.parquet")
    dropped = Counter(lineage.filter(pc.invert(lineage["kept"]))["dropped_by"].to_pylist())
    assert dropped["margin"] > 0  # all_pairs below the margin are filtered with their reason
    assert {p["signal"] for p in pairs} == {"ratings"}
    reliability("Rated candidates with faults", "bad scores, responses and lines in rated files, through a "
                "real curate: each candidate in the ledger", out["inputs"], len(ledger), out["inputs"] - len(ledger))


def test_blocks_split_anywhere_and_gzip_read_the_same(lamp_faulty, tmp_path):
    """Lines that straddle blocks, CRLF endings, no final newline and gzip give the same rows."""
    import gzip

    from pipeline.hashing import file_sha256

    path, lines, _, batch = lamp_faulty
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(("\r\n".join(lines)).encode())          # CRLF, and no newline at the end
    gz = tmp_path / "lamp.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    expected = batch.tables["rated"].drop_columns(["record_id", "prompt_key"])
    small = SourcesConfig(rated_block_bytes=4096)              # smaller than many single records
    for variant in (crlf, gz, path):
        got = read_file(variant, small, "x")
        assert got.tables["rated"].drop_columns(["record_id", "prompt_key"]).equals(expected), variant.name
        assert got.records.num_rows == batch.records.num_rows
        assert got.inputs[0]["sha256"] == file_sha256(variant)[0]  # hashed while it was read
        assert sorted(got.quarantine["error_kind"].to_pylist()) == sorted(batch.quarantine["error_kind"].to_pylist())


def test_rated_records_in_a_json_array_are_turned_down_not_taken_for_prompts(tmp_path):
    records = pandalm_as_candidates()[:3] + lamp_as_ultrafeedback()[:2]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(records))
    batch = read_file(path, SourcesConfig(), "array.json")
    assert batch.tables["prompts"].num_rows == 0 and batch.tables["rated"].num_rows == 0
    assert batch.quarantine.num_rows == len(records)
    assert all("read from JSONL" in m for m in batch.quarantine["message"].to_pylist())


def test_pii_is_scrubbed_from_prompts_responses_and_quarantined_candidates(tmp_path):
    record = {"instruction": "Write to jane.doe@example.com about the order", "completions": [
        {"model": "m1", "response": "Sure, I will mail jane.doe@example.com today.", "fine-grained_score": 4.0},
        {"model": "m2", "response": "Call +1 415 555 2671 instead.", "fine-grained_score": 2.0},
        {"model": "m3", "response": "Key sk-proj-abcdefghijklmnopqrstuvwx1234", "fine-grained_score": "N/A"}]}
    path = write(tmp_path / "pii.jsonl", [json.dumps(record)] * 2)
    batch = read_file(path, SourcesConfig(), "pii.jsonl")
    text = json.dumps(batch.tables["rated"].to_pylist()) + "".join(q["raw"].decode() for q in batch.quarantine.to_pylist())
    assert "jane.doe@example.com" not in text and "555 2671" not in text and "sk-proj-abc" not in text
    assert batch.tables["rated"]["prompt"][0].as_py() == [{"role": "user", "content": "Write to [EMAIL] about the order"}]
    assert batch.stats["pii_scrubbed"]["phone"] == 2 and batch.stats["pii_scrubbed"]["secret"] == 2
