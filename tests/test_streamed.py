"""Streamed curation of rated files (pipeline/streamed.py): the version it commits block by block
must be the version the in-memory path commits from the same inputs, table for table and
manifest for manifest, including pairs found in two blocks and prompt duplicates across blocks;
and a run that fails part-way leaves nothing behind."""
import json

import duckdb
import pytest

from pipeline.config import CurateConfig
from pipeline.curation import miner, select_pairs, version_tables_and_manifest
from pipeline.sources import read_inputs
from pipeline.store import commit_version
from pipeline.store.commit import commit_staged, stage
from pipeline.streamed import StreamedRun, streamable
from rated_files import SAMPLES, inject_faults, lamp_as_ultrafeedback, pandalm_as_candidates, write

TABLES = ("pairs", "lineage", "ledger", "quarantine", "signals")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The LAMP file with its injected faults, plus two records appended at the end, many blocks
    after the ones they repeat: record 3 again (the same pairs, from another line) and record 5's
    prompt in other case and spacing with other candidates (a prompt duplicate); and PandaLM in
    the generic form, with its real `true` responses."""
    records = lamp_as_ultrafeedback()
    lines, _ = inject_faults(records)
    again = json.dumps(records[2])
    twin = dict(records[4], instruction="  " + records[4]["instruction"].upper() + "  ")
    twin["completions"] = list(reversed(records[4]["completions"][:2]))
    folder = tmp_path_factory.mktemp("streamed")
    lamp = write(folder / "lamp_uf.jsonl", lines + [again, json.dumps(twin)])
    generic = write(folder / "pandalm.jsonl", [json.dumps(r) for r in pandalm_as_candidates()])
    return [lamp, generic], len(lines)


def in_memory(paths, cfg: CurateConfig, ws):
    batch = read_inputs(paths, cfg.sources)
    mined = miner("rated", cfg)(batch.tables["rated"])
    pairs, lineage, stats = select_pairs(mined.pairs, cfg, ws / "cache")
    tables, manifest = version_tables_and_manifest(batch, mined, pairs, lineage, stats, cfg, None)
    return commit_version(ws, "memory", tables, manifest)


def streamed(paths, cfg: CurateConfig, ws):
    staging = stage(ws, "streamed")
    run = StreamedRun(staging, cfg, ws / "cache")
    for path in paths:
        run.add_file(path, path.name)
    run.select()
    return commit_staged(ws, "streamed", staging, run.write(None))


def differing_rows(ws, table: str) -> tuple[int, int, int]:
    """(rows, rows only in the in-memory version, rows only in the streamed one)."""
    a, b = (ws / "datasets" / name / "v1" / f"{table}.parquet" for name in ("memory", "streamed"))
    con = duckdb.connect()
    count = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
    return (count(f"SELECT count(*) FROM '{a}'"),
            count(f"SELECT count(*) FROM (SELECT * FROM '{a}' EXCEPT ALL SELECT * FROM '{b}')"),
            count(f"SELECT count(*) FROM (SELECT * FROM '{b}' EXCEPT ALL SELECT * FROM '{a}')"))


def test_streamed_version_equals_the_in_memory_one(inputs, tmp_path):
    paths, n_lines = inputs
    # the defaults (semantic prompt dedup included), read about three LAMP records a block: many blocks
    cfg = CurateConfig.model_validate({"sources": {"rated_block_bytes": 8192}})
    memory = in_memory(paths, cfg, tmp_path)
    stream = streamed(paths, cfg, tmp_path)
    for table in TABLES:
        rows, only_memory, only_streamed = differing_rows(tmp_path, table)
        assert (only_memory, only_streamed) == (0, 0), (table, rows, only_memory, only_streamed)
    assert differing_rows(tmp_path, "pairs")[0] > 100
    # the same prompts were embedded: the streamed run found all of them in the shared cache
    cache = stream["stats"].pop("embedding_cache"), memory["stats"].pop("embedding_cache")
    assert cache[0] == {"hits": cache[1]["misses"], "misses": 0} and cache[1]["misses"] > 100
    for key in ("counts", "ledger", "stats", "inputs", "config_hash"):
        assert stream[key] == memory[key], key
    # record 3's pairs, found again at the end of the file, are merged into the pairs made from an
    # earlier line (LAMP repeats some records), blocks apart: no pair lists only the appended line
    lineage = duckdb.connect().execute(
        f"SELECT input_ids FROM '{tmp_path}/datasets/streamed/v1/lineage.parquet' "
        f"WHERE list_contains(input_ids, 'lamp_uf.jsonl:{n_lines + 1}#1')").fetchall()
    lines = [{int(i.split(":")[1].split("#")[0]) for i in ids} for (ids,) in lineage]
    assert lines and all(min(found) < n_lines - 200 and n_lines + 1 in found for found in lines)
    # record 5's prompt, repeated in other case and spacing, is one prompt group across blocks
    assert stream["stats"]["prompt_groups"]["duplicate_prompts"] >= 1
    dropped = duckdb.connect().execute(
        f"SELECT count(*) FROM '{tmp_path}/datasets/streamed/v1/lineage.parquet' WHERE dropped_by = 'prompt_dedup' "
        f"AND list_contains(input_ids, 'lamp_uf.jsonl:{n_lines + 2}#1')").fetchall()[0][0]
    assert dropped == 1
    assert not list((tmp_path / "datasets" / "streamed").glob(".tmp-*"))  # the staging folder became v1


def test_only_rated_inputs_without_models_are_streamed(inputs):
    paths, _ = inputs
    assert streamable(paths, CurateConfig())
    assert not streamable(paths + [SAMPLES / "lamp_expert_rankings.jsonl"], CurateConfig())
    judged = CurateConfig.model_validate({"annotate": {"annotators": [{"name": "judge", "type": "rubric_judge"}]}})
    assert not streamable(paths, judged)


def test_a_streamed_run_that_fails_leaves_no_version_and_no_staging(inputs, tmp_path, monkeypatch, reliability):
    """A real Prefect flow run that fails after writing the version's tables (injected): the flow
    fails, and the dataset has neither a version nor the staging folder with its spilled parts."""
    from flows.curate import curate

    paths, _ = inputs

    def broken(self, sides):
        assert list(self.parts.glob("cands-*.arrow")) and (self.staging / "ledger.parquet").exists()
        raise OSError("disk full (injected)")

    monkeypatch.setattr(StreamedRun, "_reports", broken)
    with pytest.raises(OSError, match="injected"):
        curate([str(p) for p in paths], "broken", str(tmp_path), {})
    dataset = tmp_path / "datasets" / "broken"
    assert dataset.is_dir() and not list(dataset.iterdir())
    reliability("Streamed run fails after writing", "a streamed curate flow run fails once its tables are "
                "written (injected): no version, no staging folder", 1, 1)
