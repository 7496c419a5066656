"""Incremental runs (pipeline/incremental.py): a run that builds on the latest version reads only
the records that version has not seen, keeps every parent row unchanged (its files shared, not
rewritten), and ends with the version a full rebuild makes, except where the parent's decisions
are final: records the test makes conflict with the parent on purpose. Real LAMP data in the
UltraFeedback form, through the real curate flow."""
import gzip
import hashlib
import json
import os
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from flows.curate import curate
from pipeline import incremental as increments, source_ids
from pipeline.config import CurateConfig
from pipeline.sources import merge, read_file
from pipeline.store import StoreError, query, verify_version
from pipeline.store.layout import table_files
from rated_files import SAMPLES, inject_faults, lamp_as_ultrafeedback, write

# exact prompt dedup only: LAMP's prompts are semantically close, and which of two near-duplicates
# represents a group may differ from a full rebuild (test_semantic_... covers semantic dedup)
CONFIG = {"dashboard": {"enabled": False}, "mixing": {"separability": "off"},
          "filters": {"per_prompt_cap": 1, "dedup": {"semantic": False}}}
KEYS = {"pairs": "pair_id, prompt, chosen, rejected, score_chosen, score_rejected, margin, weight",
        "lineage": "pair_id, input_ids, kept, dropped_by, decisions",
        "ledger": "record_id, source_file, line, status, reason",
        "quarantine": "record_id, source_file, line, error_kind, message"}


@pytest.fixture(scope="module")
def days():
    """LAMP with each prompt once (its repeats would meet day 1 too). Day 1: the first 50 lines. Day 2: the rest (with the injected faults and bad lines)
    plus three records that meet day 1 again: record 11 repeated (the same pair), record 13's prompt
    in other case and spacing (a prompt duplicate), and record 15's prompt with its two best
    candidates (a second, lower-margin pair for a prompt that has its one place under the cap). Records 1-6 hold
    injected faults, so these are unbroken."""
    records = list({" ".join(re.sub(r"[^\w\s]", "", r["instruction"].lower()).split()): r
                    for r in reversed(lamp_as_ultrafeedback())}.values())[::-1]  # LAMP repeats some prompts
    lines, _ = inject_faults(records)
    twin = dict(records[12], instruction="  " + records[12]["instruction"].upper() + "  ")
    twin["completions"] = list(reversed(records[12]["completions"][:2]))
    second = dict(records[14], completions=sorted(records[14]["completions"], key=lambda c: -c["fine-grained_score"])[:2])
    return lines[:50], lines[50:] + [json.dumps(records[10]), json.dumps(twin), json.dumps(second)]


def run(ws, dataset, paths, incremental=False, config=CONFIG):
    return curate([str(p) for p in paths], dataset, str(ws), config, incremental)


def rows_only_in(ws, table, a: tuple, b: tuple, where=""):
    sql = (f"SELECT {KEYS[table]} FROM {table} WHERE dataset = '{a[0]}' AND version = {a[1]} {where} EXCEPT ALL "
           f"SELECT {KEYS[table]} FROM {table} WHERE dataset = '{b[0]}' AND version = {b[1]} {where}")
    return query(ws, sql).to_pylist()


def ledger_of(ws, ref: tuple, record: str) -> dict:
    """{candidate id: (status, reason)} of one input record (the ledger counts candidates)."""
    rows = query(ws, f"SELECT record_id, status, reason FROM ledger WHERE dataset = '{ref[0]}' "
                     f"AND version = {ref[1]} AND record_id LIKE '{record}#%'").to_pylist()
    return {r["record_id"]: (r["status"], r["reason"]) for r in rows}


def assert_matches_full_rebuild(ws, inc: tuple, full: tuple, repeat: str, twin: str, second: str, day1: str):
    """The incremental version and the full rebuild differ only on the records that meet day 1,
    and in the ways the parent's final decisions imply."""
    rec11, rec13 = f"{day1}:11", f"{day1}:13"
    changed = {r["record_id"].split("#")[0] for r in rows_only_in(ws, "ledger", inc, full)}
    assert repeat in changed and changed <= {repeat, twin, rec13}, changed
    # the repeat of record 11 makes record 11's pair again: kept in a full rebuild (merged), accounted
    # as filtered here, naming the parent
    exists = f"pair_exists: its pair is already in the parent version v{inc[1] - 1}"
    in_pair = {k for k, (status, _) in ledger_of(ws, full, repeat).items() if status == "kept"}
    assert in_pair and {k for k, v in ledger_of(ws, inc, repeat).items() if v == ("filtered", exists)} == in_pair
    # the twin of record 13's prompt is dropped in favour of the parent's prompt
    twin_rows = ledger_of(ws, inc, twin).values()
    assert twin_rows and all(status == "filtered" and reason.startswith("prompt_dedup: near-duplicate of prompt")
                             and "in the parent version v1" in reason for status, reason in twin_rows)
    # a second pair for record 15's prompt: the parent's pair holds the cap's one place
    paired = [v for v in ledger_of(ws, inc, second).values() if v[1] and v[1].startswith("per_prompt_cap")]
    assert paired and all(v == ("filtered", "per_prompt_cap: rank 2 of its prompt > cap 1 (lower margin)")
                          for v in paired)
    # pairs: the same, but for record 13's group, which a full rebuild may give to the twin
    assert len(rows_only_in(ws, "pairs", inc, full) + rows_only_in(ws, "pairs", full, inc)) in (0, 2)
    # lineage: record 11's pair lists the repeat's candidates only in the full rebuild
    merged = [r for r in rows_only_in(ws, "lineage", full, inc)
              if any(i.startswith(repeat + "#") for i in r["input_ids"])]
    assert len(merged) == 1
    assert all(i.startswith(rec11 + "#") or i.startswith(repeat + "#") for i in merged[0]["input_ids"])
    assert rows_only_in(ws, "quarantine", inc, full) == rows_only_in(ws, "quarantine", full, inc) == []


def lost_records(ws, inc: tuple, full: tuple) -> int:
    """Input records of the full rebuild that the incremental version does not account for."""
    return query(ws, f"SELECT count(*) AS n FROM (SELECT record_id FROM ledger WHERE dataset = '{full[0]}' AND "
                     f"version = {full[1]} EXCEPT SELECT record_id FROM ledger WHERE dataset = '{inc[0]}' "
                     f"AND version = {inc[1]})")["n"][0].as_py()


def test_a_new_file_is_read_alone_and_the_parent_is_shared(days, tmp_path, reliability):
    day1, day2 = days
    d1, d2 = write(tmp_path / "day1.jsonl", day1), write(tmp_path / "day2.jsonl", day2)
    ws = tmp_path / "ws"
    v1 = run(ws, "logs", [d1])
    v2 = run(ws, "logs", [d1, d2], incremental=True)
    full = run(ws, "full", [d1, d2])
    assert v2["parent"] == 1
    assert v2["stats"]["increment"] == {"parent": 1, "files_read": ["day2.jsonl"], "files_appended": {},
                                        "files_skipped": 1}
    assert v2["counts"]["records"] == full["ledger"]["inputs"] - v1["ledger"]["inputs"]  # day 1 was not read
    assert v2["ledger"]["inputs"] == full["ledger"]["inputs"]
    assert [e["label"] for e in v2["inputs"]] == ["day1.jsonl", "day2.jsonl"]
    # every parent row is in the new version, unchanged, in the very same files
    for table in KEYS:
        assert rows_only_in(ws, table, ("logs", 1), ("logs", 2)) == [], table
    v1_dir, v2_dir = (ws / "datasets" / "logs" / f"v{n}" for n in (1, 2))
    for table in ("pairs", "lineage", "ledger", "quarantine"):
        parts = table_files(v2_dir, table)
        assert [p.name for p in parts] == [f"{table}.parquet", f"{table}.1.parquet"]
        assert os.stat(parts[0]).st_ino == os.stat(v1_dir / f"{table}.parquet").st_ino
    assert verify_version(ws, "logs@2") == []
    assert_matches_full_rebuild(ws, ("logs", 2), ("full", 1), f"day2.jsonl:{len(day2) - 2}",
                                f"day2.jsonl:{len(day2) - 1}", f"day2.jsonl:{len(day2)}", "day1.jsonl")
    lost = lost_records(ws, ("logs", 2), ("full", 1))
    reliability("incremental run: a new file", "a version built on its parent from a new daily file (with "
                "records that repeat, twin or crowd the parent's): every record of both files in its ledger once, "
                "the parent's rows unchanged", full["ledger"]["inputs"], v2["ledger"]["inputs"] - lost, lost)
    assert lost == 0
    # nothing new: no new version
    again = run(ws, "logs", [d1, d2], incremental=True)
    assert again["version"] == 2 and len(query(ws, "SELECT * FROM versions WHERE dataset = 'logs'")) == 2


def test_an_appended_log_is_read_from_where_the_parent_ended(days, tmp_path, reliability, monkeypatch):
    day1, day2 = days
    log = write(tmp_path / "log.jsonl", day1)
    monkeypatch.setattr(increments, "HASH_CHUNK", 4096)  # the parent's part is hashed in many chunks
    assert log.stat().st_size > 8 * increments.HASH_CHUNK
    ws = tmp_path / "ws"
    run(ws, "append", [log])
    with log.open("a", encoding="utf-8") as f:
        f.write("\n".join(day2) + "\n")
    v2 = run(ws, "append", [log], incremental=True)
    full = run(ws, "full", [log])
    assert v2["stats"]["increment"]["files_appended"] == {"log.jsonl": len(day1) + 1}
    assert v2["stats"]["increment"]["files_read"] == []
    assert v2["counts"]["records"] < full["counts"]["records"]
    # the fingerprint covers the whole file, though only its new part was read
    entry, = v2["inputs"]
    assert entry["sha256"] == hashlib.sha256(log.read_bytes()).hexdigest() == full["inputs"][0]["sha256"]
    assert entry["bytes"] == log.stat().st_size and entry["records"] == full["inputs"][0]["records"]
    n = len(day1) + len(day2)
    assert_matches_full_rebuild(ws, ("append", 2), ("full", 1), f"log.jsonl:{n - 2}", f"log.jsonl:{n - 1}",
                                f"log.jsonl:{n}", "log.jsonl")
    lost = lost_records(ws, ("append", 2), ("full", 1))
    reliability("incremental run: an appended log", "a version built on its parent from the lines appended to "
                "the log it read: every record of the whole file in its ledger once, numbered as a full read numbers "
                "them", full["ledger"]["inputs"], v2["ledger"]["inputs"] - lost, lost)
    assert lost == 0


def test_what_cannot_be_an_increment_is_rebuilt_in_full(days, tmp_path):
    day1, _ = days
    log = write(tmp_path / "day1.jsonl", day1)
    ws = tmp_path / "ws"
    run(ws, "d", [log])
    # touched but unchanged: hashed, found equal, nothing new
    os.utime(log, ns=(1, 1))
    assert run(ws, "d", [log], incremental=True)["version"] == 1
    # the dashboard switched on: it shapes no data, so the run is still an increment (nothing new)
    assert run(ws, "d", [log], incremental=True, config={**CONFIG, "dashboard": {"enabled": True}})["version"] == 1
    # another config: a full rebuild, saying why
    other = {**CONFIG, "filters": {"per_prompt_cap": 2}}
    v2 = run(ws, "d", [log], incremental=True, config=other)
    assert v2["stats"]["increment"] == {"parent": None, "full_rebuild": "the config changed since v1"}
    # a byte changed in the middle of the file
    data = bytearray(log.read_bytes())
    data[100] = ord("X") if data[100] != ord("X") else ord("Y")
    log.write_bytes(bytes(data))
    v3 = run(ws, "d", [log], incremental=True, config=other)
    assert v3["stats"]["increment"]["full_rebuild"].endswith("changed (not only appended to) since v2")
    assert v3["parent"] == 2 and v3["ledger"]["inputs"] == v2["ledger"]["inputs"]
    # a line appended to a file whose last line was unfinished
    log.write_bytes(bytes(data).rstrip(b"\n"))
    v4 = run(ws, "d", [log], incremental=True, config=other)
    log.write_bytes(bytes(data).rstrip(b"\n") + b"\n" + day1[0].encode() + b"\n")
    v5 = run(ws, "d", [log], incremental=True, config=other)
    assert v4["stats"]["increment"]["full_rebuild"].endswith("shrank since v3")
    assert "in the middle of its last line" in v5["stats"]["increment"]["full_rebuild"]


def test_a_missing_part_fails_reads_loudly(days, tmp_path):
    day1, day2 = days
    d1, d2 = write(tmp_path / "day1.jsonl", day1), write(tmp_path / "day2.jsonl", day2)
    ws = tmp_path / "ws"
    run(ws, "logs", [d1])
    v2 = run(ws, "logs", [d1, d2], incremental=True)
    assert len(query(ws, "SELECT * FROM pairs WHERE version = 2")) == v2["ledger"]["pairs"]
    part = ws / "datasets" / "logs" / "v2" / "pairs.1.parquet"
    part.unlink()
    with pytest.raises(StoreError, match="damaged version: missing .*v2/pairs.1.parquet"):
        query(ws, "SELECT count(*) FROM pairs WHERE version = 1")
    assert any("missing file: pairs.1.parquet" in p for p in verify_version(ws, "logs@2"))


def test_semantic_dedup_and_the_cap_hold_across_the_parent(tmp_path):
    """All of LAMP (it repeats many prompts) plus four day 1 prompts reworded at the end of day 2,
    with the default
    semantic dedup and cap: no prompt kept by the increment is a near-duplicate of one the parent
    kept, and no prompt has more pairs than the cap, counting both versions' pairs."""
    records = lamp_as_ultrafeedback()
    reworded = [dict(r, instruction="Please help. " + r["instruction"]) for r in records[20:140:30]]
    lines = [json.dumps(r) for r in records + reworded]
    d1, d2 = write(tmp_path / "day1.jsonl", lines[:140]), write(tmp_path / "day2.jsonl", lines[140:])
    ws, config = tmp_path / "ws", {"dashboard": {"enabled": False}, "filters": {"per_prompt_cap": 2}}
    run(ws, "lamp", [d1], config=config)
    v2 = run(ws, "lamp", [d1, d2], incremental=True, config=config)
    for table in KEYS:
        assert rows_only_in(ws, table, ("lamp", 1), ("lamp", 2)) == [], table
    n2 = len(lines) - 140
    for line in range(n2 - 3, n2 + 1):  # the reworded prompts: dropped in favour of the parent's
        rows = ledger_of(ws, ("lamp", 2), f"day2.jsonl:{line}").values()
        assert not any(status == "kept" for status, _ in rows)
        assert any(reason.startswith("prompt_dedup: near-duplicate of prompt") and
                   "in the parent version v1 (cosine 0.9" in reason for _, reason in rows), rows
    kept = query(ws, "SELECT prompt_id, any_value(prompt) AS prompt, count(*) AS n, max(filename LIKE '%.1.parquet') AS new "
                     "FROM (SELECT *, filename FROM read_parquet('" + str(ws / "datasets/lamp/v2/pairs*.parquet") +
                     "', filename = true)) GROUP BY prompt_id").to_pylist()
    assert max(r["n"] for r in kept) <= 2 and sum(r["n"] for r in kept) == v2["ledger"]["pairs"]
    from pipeline.embed import embed
    from pipeline.filters.dedup import exact_key
    texts = [" ".join(m["content"].split()) for r in kept for m in r["prompt"]]
    vectors, _ = embed(texts, "all-MiniLM-L6-v2", ws / "cache")
    new = np.array([r["new"] for r in kept])
    assert new.any() and (~new).any()
    assert (vectors[new] @ vectors[~new].T).max() < 0.95
    keys = exact_key(pa.array(texts)).to_pylist()
    assert not {k for k, n in zip(keys, new) if n} & {k for k, n in zip(keys, new) if not n}


def test_conversation_logs_build_on_the_parent_in_memory(tmp_path, reliability):
    """The in-memory path (ShareGPT conversations and PandaLM human votes, mixed in daily files):
    day 2's file is read alone,
    the parent's rows are kept as they are, every record of both days is in the ledger once, and
    each record whose fate differs from a full rebuild's is one the parent's final decisions
    explain. Day 2 logs a day-1 conversation again: it is quarantined as a duplicate id, naming
    the parent's record. A log that grew cannot be read from the middle here: it is rebuilt in full."""
    chats = gzip.decompress((SAMPLES / "sharegpt_multiturn.jsonl.gz").read_bytes()).decode().splitlines()
    votes = (SAMPLES / "pairwise_pandalm_human.jsonl").read_text().splitlines()
    day1, day2 = chats[:1000] + votes[:237], chats[1000:] + [chats[7]] + votes[237:]
    lines = day1 + day2
    d1, d2 = write(tmp_path / "day1.jsonl", day1), write(tmp_path / "day2.jsonl", day2)
    ws = tmp_path / "ws"
    run(ws, "chats", [d1])
    v2 = run(ws, "chats", [d1, d2], incremental=True)
    full = run(ws, "full", [d1, d2])
    assert v2["parent"] == 1 and v2["stats"]["increment"]["files_read"] == ["day2.jsonl"]
    assert v2["counts"]["records"] == len(day2)  # day 1 was not read
    for table in KEYS:
        assert rows_only_in(ws, table, ("chats", 1), ("chats", 2)) == [], table
    lost = lost_records(ws, ("chats", 2), ("full", 1))
    assert v2["ledger"]["inputs"] == full["ledger"]["inputs"] == len(lines) and lost == 0
    assert v2["ledger"]["pairs"] > 50
    again = query(ws, "SELECT record_id, error_kind, message FROM quarantine WHERE dataset = 'chats' AND version = 2 "
                      "AND error_kind = 'duplicate_id'").to_pylist()
    conversation_id = json.loads(chats[7])["id"]
    assert again == [{"record_id": f"day2.jsonl:{len(chats) - 1000 + 1}", "error_kind": "duplicate_id",
                      "message": f"conversation_id {conversation_id!r} already seen in record day1.jsonl:8 "
                                 "of parent version v1 (first one kept)"}]
    mine = {r["record_id"]: r for r in rows_only_in(ws, "ledger", ("chats", 2), ("full", 1))}
    theirs = {r["record_id"]: r for r in rows_only_in(ws, "ledger", ("full", 1), ("chats", 2))}
    assert set(mine) == set(theirs)
    for rid, row in mine.items():  # the parent's decisions held, or a full rebuild re-decided the group
        assert "parent version v1" in (row["reason"] or "") or \
            (theirs[rid]["reason"] or "").startswith(("per_prompt_cap", "prompt_dedup")), (row, theirs[rid])
    reliability("incremental run: conversation logs", "a version built on its parent from a new day of real "
                "ShareGPT conversations and PandaLM votes (in memory): every record of both days in its ledger once, the parent's "
                "rows unchanged, a conversation the parent read quarantined as a duplicate", len(lines), v2["ledger"]["inputs"] - lost, lost)
    with d2.open("a", encoding="utf-8") as f:
        f.write(chats[0] + "\n")
    v3 = run(ws, "chats", [d1, d2], incremental=True)
    assert v3["stats"]["increment"]["full_rebuild"] == \
        f"{d2} grew (only rated files are read from where the parent ended) since v2"
    ids = ws / "cache" / "source-ids" / "chats" / "v3"   # a cache the version cannot rebuild: a full run makes it again
    shutil.rmtree(ids)
    v4 = run(ws, "chats", [d1, d2, write(tmp_path / "day3.jsonl", chats[1:2])], incremental=True)
    assert v4["stats"]["increment"]["full_rebuild"] == f"v3 has no source-id index ({ids}; an in-memory run writes it)"
    assert (ws / "cache" / "source-ids" / "chats" / "v4").is_dir()


def test_answers_and_ids_the_parent_read_are_resolved_across_it(tmp_path):
    """Stack Exchange posts split in two days: a day-2 answer that a day-1 question names as
    accepted is accepted, and a day-2 post the parent read already is a duplicate, exactly as
    when both days are read in one run (pipeline/source_ids.py, without the flow)."""
    lines = (SAMPLES / "se_history_meta_posts.jsonl").read_text().splitlines()
    cfg = CurateConfig().sources
    full = read_file(str(SAMPLES / "se_history_meta_posts.jsonl"), cfg, "all")
    link = full.accepted_answers.to_pylist()[len(full.accepted_answers) // 2]  # a question in the middle
    answer = full.tables["ugc"].filter(pc.equal(full.tables["ugc"]["post_id"], link["answer_id"]))["record_id"][0]
    split = int(answer.as_py().split(":")[1]) - 1   # its accepted answer is the first line of day 2
    day1, day2 = write(tmp_path / "day1.jsonl", lines[:split]), write(tmp_path / "day2.jsonl", lines[split:] + lines[:1])
    first, second = (read_file(str(p), cfg, p.name) for p in (day1, day2))
    whole = merge([first, second])
    pq.write_table(source_ids.of_batch(merge([first])), tmp_path / "part-000000.parquet")
    alone = merge([second])
    built = merge([alone], source_ids.in_parent([tmp_path / "part-000000.parquet"], [alone], "parent version v1"))

    def accepted(batch):
        ugc = batch.tables["ugc"]
        return set(ugc.filter(pc.and_(ugc["accepted"], pc.starts_with(ugc["record_id"], "day2")))["post_id"].to_pylist())

    assert len(accepted(whole)) > len(accepted(alone))  # some day-2 answers were accepted by day-1 questions
    assert accepted(built) == accepted(whole)
    dup = built.quarantine.filter(pc.equal(built.quarantine["error_kind"], "duplicate_id")).to_pylist()
    assert [(r["record_id"], r["message"]) for r in dup] == [
        (f"day2.jsonl:{len(lines) - split + 1}", f"post_id {json.loads(lines[0])['site'] + '/1'!r} already seen "
         "in record day1.jsonl:1 of parent version v1 (first one kept)")]
    assert built.tables["ugc"].num_rows == whole.tables["ugc"].num_rows - first.tables["ugc"].num_rows


def test_the_caps_lookup_is_answered_from_dedups(tmp_path):
    """The per-prompt cap asks the parent's prompt index about prompts that prompt dedup already
    looked up (by id or key): the answer comes from that lookup, without a second scan of the
    index, and equals what a scan answers. Index parts from LAMP's prompts, one prompt in both parts
    (its kept pairs are summed)."""
    from pipeline.filters.prior import PROMPTS, Prior

    prompts = sorted({r["instruction"] for r in lamp_as_ultrafeedback()})
    sha = [hashlib.sha256(p.encode()).hexdigest() for p in prompts]
    key = [hashlib.sha256(" ".join(p.lower().split()).encode()).hexdigest() for p in prompts]
    both = len(prompts) // 6 * 3                    # in both parts, and among the run's ids below
    parts = [pa.table({"prompt_id": sha[:both + 1], "key": key[:both + 1], "pairs": [1] * (both + 1)}, schema=PROMPTS),
             pa.table({"prompt_id": sha[both:], "key": key[both:], "pairs": [2] * (len(sha) - both)}, schema=PROMPTS)]
    for i, part in enumerate(parts):
        pq.write_table(part, tmp_path / f"part-{i}.parquet")
    index = sorted(tmp_path.glob("part-*.parquet"))
    run_ids = pa.array(sha[::3] + ["0" * 64])       # a third of the parent's prompts, and a new one
    run_keys = pa.array(key[1::3])                  # keys of others: dedup's answer holds both
    prior = Prior(version=1, index=index)
    assert prior.prompts(run_ids, run_keys).num_rows == len(sha[::3]) + len(sha[1::3])
    kept = pa.array(sorted(set(sha[::6]) | {sha[both]}))
    expected = Prior(version=1, index=index).prompts(kept)
    assert expected["prompt_id"].to_pylist() == kept.to_pylist()
    assert expected.filter(pc.equal(expected["prompt_id"], sha[both]))["pairs"].to_pylist() == [3]
    for path in index:
        path.unlink()                               # a second scan would now fail
    assert prior.prompts(kept).equals(expected)
    with pytest.raises(Exception, match="No files found"):  # ids dedup did not look up need a scan
        prior.prompts(pa.array(sha[2::3]))
