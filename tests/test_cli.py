"""End to end through the real `prefmill` command: a real Prefect flow run, a real DuckDB
catalog, real embeddings, on the real samples shipped in data/samples/."""
import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cli_helpers import ALL_SAMPLES, last_json, run
from conftest import SAMPLES


def test_curate_commits_a_balanced_version_from_every_sample(curated):
    ws, first, _ = curated
    assert first["version"] == 1
    assert first["inputs"] == first["kept"] + first["filtered"] + first["quarantined"]
    manifest = json.loads((Path(first["path"]) / "manifest.json").read_text())
    expected_records = sum(f["records"] for f in json.loads((SAMPLES / "manifest.json").read_text())["files"].values())
    assert manifest["ledger"]["inputs"] == expected_records  # every record of every file accounted for
    by_signal = manifest["stats"]["pairs_by_signal"]
    assert set(by_signal) == {"dsat_sat", "edit", "ugc_votes", "human_pairwise"}, by_signal
    assert first["pairs"] == sum(by_signal.values())
    assert manifest["flow_run_id"] and manifest["config_hash"] and manifest["parent"] is None


def test_rerun_is_deterministic_and_chained(curated):
    """v2 mined the same files in batches of 100 records instead of 5,000: the same pairs."""
    ws, first, second = curated
    assert second["version"] == 2 and second["pairs"] == first["pairs"]
    diff = json.loads(run("diff", "samples@1", "samples@2", "--workspace", str(ws), "--json").stdout)
    assert diff["added"]["count"] == 0 and diff["removed"]["count"] == 0 and diff["changed"]["count"] == 0
    versions = json.loads(run("versions", "samples", "--workspace", str(ws), "--json").stdout)
    assert [(v["version"], v["parent"]) for v in versions] == [(1, None), (2, 1)]


def test_catalog_answers_queries_from_cli_and_a_plain_duckdb_client(curated):
    ws, first, _ = curated
    rows = json.loads(run("query", "SELECT version, count(*) AS n FROM pairs GROUP BY version ORDER BY version",
                          "--workspace", str(ws), "--json").stdout)
    assert rows == [{"version": 1, "n": first["pairs"]}, {"version": 2, "n": first["pairs"]}]
    con = duckdb.connect(str(ws / "catalog.duckdb"), read_only=True)
    ledger = dict(con.sql("SELECT status, count(*) FROM ledger WHERE version = 1 GROUP BY status").fetchall())
    assert ledger == {k: first[k] for k in ("kept", "filtered", "quarantined") if first[k]}
    # every kept pair traces back to input records that the ledger marks kept
    orphans = con.sql("""SELECT count(*) FROM (SELECT unnest(input_ids) AS record_id FROM lineage
                         WHERE version = 1 AND kept) l ANTI JOIN (SELECT record_id FROM ledger
                         WHERE version = 1 AND status = 'kept') USING (record_id)""").fetchall()[0][0]
    assert orphans == 0


def test_export_and_verify(curated, tmp_path):
    ws, first, _ = curated
    out = tmp_path / "trl"
    run("export", "samples@1", "--to", str(out), "--workspace", str(ws))
    import datasets

    ds = datasets.load_from_disk(str(out))
    assert ds.column_names == ["prompt", "chosen", "rejected"] and len(ds) == first["pairs"]
    assert run("verify", "samples@1", "--workspace", str(ws)).returncode == 0


def test_verify_names_a_tampered_file(curated, tmp_path):
    ws = tmp_path / "ws"  # a copy: the session's other tests read the curated versions
    shutil.copytree(curated[0] / "datasets", ws / "datasets")
    pairs = ws / "datasets" / "samples" / "v2" / "lineage.parquet"
    os.chmod(pairs, 0o644)
    data = bytearray(pairs.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pairs.write_bytes(bytes(data))
    proc = run("verify", "samples@2", "--workspace", str(ws), check=False)
    assert proc.returncode != 0 and "lineage.parquet" in proc.stderr


def test_bad_records_are_quarantined_and_the_run_goes_on(tmp_path):
    good = (SAMPLES / "pairwise_pandalm_human.jsonl").read_text().splitlines()[:20]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(good[:10] + ["{not json", '{"who": "knows"}', "[1, 2]"] + good[10:]) + "\n")
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("filters:\n  dedup:\n    semantic: false\n")
    result = last_json(run("curate", str(mixed), str(tmp_path / "missing.jsonl"), "--dataset", "mixed",
                           "--workspace", str(tmp_path / "ws"), "--config", str(cfg), "--json"))
    assert result["quarantined"] == 4  # three bad lines and the missing file
    assert result["inputs"] == 24 and result["inputs"] == result["kept"] + result["filtered"] + result["quarantined"]
    con = duckdb.connect(str(tmp_path / "ws" / "catalog.duckdb"), read_only=True)
    kinds = sorted(r[0] for r in con.sql("SELECT error_kind FROM quarantine").fetchall())
    assert kinds == ["invalid_json", "not_an_object", "unknown_format", "unreadable_file"]


def test_no_readable_input_fails_clearly(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    proc = run("curate", str(bad), "--dataset", "x", "--workspace", str(tmp_path / "ws"), check=False)
    assert proc.returncode == 1 and "no input record could be read" in proc.stderr
    assert not (tmp_path / "ws" / "datasets" / "x").exists() or not any((tmp_path / "ws" / "datasets" / "x").glob("v*"))


def test_unusable_config_fails_before_running(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("filters:\n  per_prompt_cap: lots\n")
    proc = run("curate", ALL_SAMPLES[0], "--dataset", "x", "--config", str(cfg), "--workspace", str(tmp_path), check=False)
    assert proc.returncode == 2 and "per_prompt_cap" in proc.stderr


def test_cli_runs_leave_flow_heartbeats_off_unless_the_user_sets_them(monkeypatch):
    """`prefmill curate` turns Prefect's flow-run heartbeats off around its flow run (Prefect waits
    for the heartbeat thread as each run ends); a user who set PREFECT_FLOWS_HEARTBEAT_FREQUENCY keeps
    theirs."""
    from prefect.settings import get_current_settings

    from pipeline.cli import _without_heartbeats

    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    outside = get_current_settings().flows.heartbeat_frequency
    assert outside is not None                       # Prefect's default sends them
    with _without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == outside
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    with _without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency == 60


def test_flow_parameters_are_recorded_as_prefects_encoder_would_without_importing_fastapi():
    """The flows record JSON parameters as they are: the values FastAPI's encoder (which Prefect
    uses) gives, without importing FastAPI (0.1 s of every run). Other values still go through it."""
    code = """if True:
        import datetime, json, pathlib, sys
        from flows.curate import curate
        plain = {"inputs": ["a.jsonl"], "dataset": "d", "workspace": "/w", "incremental": True,
                 "config": {"filters": {"min_margin": {"edit": 0.5}}, "schedules": []}, "dask_address": None}
        recorded = curate.serialize_parameters(plain)
        imported = "fastapi" in sys.modules
        other = curate.serialize_parameters({"when": datetime.date(2026, 11, 24), "path": pathlib.Path("/w")})
        from fastapi.encoders import jsonable_encoder
        print(json.dumps({"imported": imported, "recorded": recorded, "plain": plain,
                          "encoder": jsonable_encoder(plain), "other": other}))
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["imported"] is False
    assert out["recorded"] == out["plain"] == out["encoder"]
    assert out["other"] == {"when": "2026-11-24", "path": "/w"}


def test_the_collector_is_off_during_a_commands_imports_and_on_after_them():
    """`_importing` turns the cyclic collector off for a command's heavy imports only: it is on
    again after them, also when an import fails (`serve` runs for days: it must collect)."""
    from pipeline.cli import _importing

    assert gc.isenabled()
    with _importing():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ImportError), _importing():
        importlib.import_module("no_such_module_here")
    assert gc.isenabled()
