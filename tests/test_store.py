"""The versioned store on real data: commit, manifest, catalog, crash atomicity, diff, verify."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.store import (StoreError, VersionRef, commit_version, diff_versions, list_versions, query,
                            refresh_catalog, resolve, verify_version)
from test_store_sample import build_tables, load_records

DATA_FILES = ["ledger.parquet", "lineage.parquet", "pairs.parquet", "quarantine.parquet", "signals.parquet",
              "version.parquet"]


@pytest.fixture(scope="module")
def records():
    return load_records()


@pytest.fixture
def two_versions(tmp_path, records):
    """v1 from the first 300 records, v2 from all of them."""
    ws = tmp_path / "ws"
    m1 = commit_version(ws, "pandalm", *build_tables(records[:300]))
    m2 = commit_version(ws, "pandalm", *build_tables(records))
    return ws, m1, m2


def test_commit_numbering_parent_and_manifest(two_versions, records):
    ws, m1, m2 = two_versions
    assert (m1["version"], m1["parent"]) == (1, None)
    assert (m2["version"], m2["parent"]) == (2, 1)
    for m in (m1, m2):
        vdir = ws / "datasets" / "pandalm" / f"v{m['version']}"
        assert resolve(ws, f"pandalm@{m['version']}") == vdir
        assert sorted(p.name for p in vdir.iterdir()) == sorted(DATA_FILES + ["manifest.json"])
        assert json.loads((vdir / "manifest.json").read_text()) == m
        assert m["dataset"] == "pandalm" and m["created"].endswith("+00:00")
        assert m["flow_run_id"] == "test-run" and m["code_version"] == "test" and len(m["config_hash"]) == 64
        for name, facts in m["files"].items():
            data = (vdir / name).read_bytes()
            assert facts["sha256"] == hashlib.sha256(data).hexdigest()
            assert facts["bytes"] == len(data)
            assert facts["rows"] == pq.read_metadata(vdir / name).num_rows
        assert m["files"]["pairs.parquet"]["rows"] == m["ledger"]["pairs"]
        assert m["files"]["signals.parquet"]["rows"] == 0  # optional table written empty
        assert m["files"]["quarantine.parquet"]["rows"] == m["ledger"]["quarantined"] > 0
        assert verify_version(ws, f"pandalm@{m['version']}") == []
    assert m2["ledger"]["inputs"] == len(records)
    assert resolve(ws, "pandalm") == ws / "datasets" / "pandalm" / "v2"
    # version.parquet mirrors the manifest (minus its own hash, which only manifest.json can hold)
    row = pq.read_table(ws / "datasets/pandalm/v2/version.parquet").to_pylist()[0]
    assert (row["dataset"], row["version"], row["parent"], row["pairs"]) == ("pandalm", 2, 1, m2["ledger"]["pairs"])
    embedded = json.loads(row["manifest_json"])
    assert embedded["files"] == {k: v for k, v in m2["files"].items() if k != "version.parquet"}
    # files are read-only
    assert not os.access(ws / "datasets/pandalm/v1/pairs.parquet", os.W_OK) or os.geteuid() == 0
    assert not (ws / "datasets/pandalm/v1/pairs.parquet").stat().st_mode & 0o222


def test_list_versions(two_versions):
    ws, m1, m2 = two_versions
    table = list_versions(ws)
    assert table.column_names[:3] == ["dataset", "version", "parent"]
    assert table.select(["dataset", "version", "pairs"]).to_pylist() == [
        {"dataset": "pandalm", "version": 1, "pairs": m1["ledger"]["pairs"]},
        {"dataset": "pandalm", "version": 2, "pairs": m2["ledger"]["pairs"]}]
    assert list_versions(ws, "pandalm").num_rows == 2
    assert list_versions(ws, "other").num_rows == 0


def test_catalog_views(two_versions):
    ws, m1, m2 = two_versions
    got = query(ws, "SELECT dataset, version, count(*) AS n FROM pairs GROUP BY ALL ORDER BY version").to_pylist()
    assert got == [{"dataset": "pandalm", "version": 1, "n": m1["ledger"]["pairs"]},
                   {"dataset": "pandalm", "version": 2, "n": m2["ledger"]["pairs"]}]
    for view in ("pairs", "lineage", "quarantine", "ledger", "signals", "versions"):
        cols = query(ws, f"SELECT * FROM {view} LIMIT 0").column_names
        assert cols[:2] == ["dataset", "version"], view
    led = query(ws, "SELECT status, count(*) AS n FROM ledger WHERE version = 2 GROUP BY ALL")
    counts = {r["status"]: r["n"] for r in led.to_pylist()}
    assert counts == {k: m2["ledger"][k] for k in ("kept", "filtered", "quarantined")}
    versions = query(ws, "SELECT version, parent, config_hash FROM versions ORDER BY version").to_pylist()
    assert [(r["version"], r["parent"]) for r in versions] == [(1, None), (2, 1)]
    with pytest.raises(StoreError, match="query failed"):
        query(ws, "SELECT nope FROM pairs")


def test_catalog_opens_from_another_directory(two_versions, tmp_path):
    ws, _, m2 = two_versions
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(con.sql(\"SELECT count(*) FROM pairs WHERE version = 2\").fetchall()[0][0]); "
            "print(con.sql('SELECT count(*) FROM hub_pushes').fetchall()[0][0])")
    out = subprocess.run([sys.executable, "-c", code, str(ws / "catalog.duckdb")], cwd=elsewhere,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(m2["ledger"]["pairs"]), "0"]


def test_catalog_waits_for_another_process_holding_its_lock(two_versions):
    """Another process holds catalog.duckdb read-write for a second; query and refresh wait for it."""
    ws, _, m2 = two_versions
    code = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
            "time.sleep(1.0); con.close()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(ws / "catalog.duckdb")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        got = query(ws, "SELECT count(*) AS n FROM pairs WHERE version = 2").to_pylist()
        assert got == [{"n": m2["ledger"]["pairs"]}]
        assert holder.poll() is not None  # it only got through once the holder let go
    finally:
        holder.wait(timeout=30)
    assert refresh_catalog(ws) == ws / "catalog.duckdb"


def test_query_shares_an_open_read_write_connection(two_versions):
    """A caller in this process holding the catalog read-write does not make query() fail."""
    import duckdb
    ws, m1, _ = two_versions
    with duckdb.connect(str(ws / "catalog.duckdb")):
        got = query(ws, "SELECT count(*) AS n FROM pairs WHERE version = 1").to_pylist()
    assert got == [{"n": m1["ledger"]["pairs"]}]


def test_catalog_ignores_hive_like_paths(tmp_path, records):
    ws = tmp_path / "team=nlp" / "ws"  # a key=value folder must not become a column
    commit_version(ws, "h", *build_tables(records[:40]))
    assert query(ws, "SELECT * FROM pairs LIMIT 0").column_names[:3] == ["dataset", "version", "pair_id"]
    assert "team" not in query(ws, "SELECT * FROM versions LIMIT 0").column_names


def test_empty_catalog_has_typed_views(tmp_path):
    ws = tmp_path / "ws"
    path = refresh_catalog(ws)
    assert path == ws / "catalog.duckdb" and path.exists()
    pairs = query(ws, "SELECT * FROM pairs")
    assert pairs.num_rows == 0
    assert pairs.column_names[:4] == ["dataset", "version", "pair_id", "prompt_id"]
    assert pa.types.is_list(pairs.schema.field("chosen").type)
    assert query(ws, "SELECT count(*) AS n FROM versions").to_pylist() == [{"n": 0}]


@pytest.mark.parametrize("fail_at", [3, 6])  # a data table; version.parquet (after all data tables)
def test_crash_during_write_leaves_no_version(tmp_path, records, monkeypatch, fail_at, reliability):
    """Fault injection: the Parquet writer raises on its Nth file, as a crash mid-commit would."""
    ws = tmp_path / "ws"
    tables, manifest = build_tables(records[:120])
    commit_version(ws, "crashy", tables, manifest)
    real_write, calls = pq.write_table, []

    def failing_write(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == fail_at:
            raise OSError("injected: disk gone")
        return real_write(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing_write)
    with pytest.raises(OSError, match="injected"):
        commit_version(ws, "crashy", tables, manifest)
    monkeypatch.setattr(pq, "write_table", real_write)
    ddir = ws / "datasets" / "crashy"
    assert sorted(p.name for p in ddir.iterdir()) == ["v1"]  # no v2, temp folder removed
    assert list_versions(ws, "crashy")["version"].to_pylist() == [1]
    assert commit_version(ws, "crashy", tables, manifest)["version"] == 2  # no gap
    reliability(f"Commit fails at file {fail_at}", "the Parquet writer raises mid-commit (injected): no version, "
                "no temp folder, the next commit takes the next number", 1, 1)


def test_leftover_temp_folder_is_ignored(tmp_path, records):
    """A .tmp-* folder left by a killed writer (complete files, no rename) is invisible."""
    ws = tmp_path / "ws"
    tables, manifest = build_tables(records[:100])
    m1 = commit_version(ws, "left", tables, manifest)
    ddir = ws / "datasets" / "left"
    leftover = ddir / ".tmp-deadbeef"
    leftover.mkdir()
    for f in (ddir / "v1").iterdir():
        (leftover / f.name).write_bytes(f.read_bytes())
    refresh_catalog(ws)
    assert list_versions(ws)["version"].to_pylist() == [1]
    assert resolve(ws, "left") == ddir / "v1"
    assert query(ws, "SELECT count(*) AS n FROM pairs").to_pylist() == [{"n": m1["ledger"]["pairs"]}]
    assert query(ws, "SELECT count(*) AS n FROM versions").to_pylist() == [{"n": 1}]
    assert commit_version(ws, "left", tables, manifest)["version"] == 2


def test_ledger_imbalance_is_refused(tmp_path, records):
    ws = tmp_path / "ws"
    tables, manifest = build_tables(records[:80])
    bad = json.loads(json.dumps(manifest))
    bad["ledger"]["inputs"] += 1
    with pytest.raises(StoreError, match="does not balance"):
        commit_version(ws, "led", tables, bad)
    bad = json.loads(json.dumps(manifest))
    bad["ledger"]["pairs"] -= 1
    bad["ledger"]["kept"] -= 1
    bad["ledger"]["inputs"] -= 1
    with pytest.raises(StoreError, match="pairs.parquet has"):
        commit_version(ws, "led", tables, bad)
    short = {**tables, "ledger": tables["ledger"].slice(1)}  # one input record unaccounted for
    with pytest.raises(StoreError, match="ledger table has"):
        commit_version(ws, "led", short, manifest)
    assert not (ws / "datasets" / "led").exists() or not any((ws / "datasets" / "led").iterdir())
    # without a ledger summary the store derives it from the ledger table
    derived = commit_version(ws, "led", tables, {k: v for k, v in manifest.items() if k != "ledger"})
    assert {k: derived["ledger"][k] for k in manifest["ledger"]} == manifest["ledger"]
    assert derived["ledger"]["filtered_reasons"]


def test_an_increment_repeating_a_base_pair_id_is_refused(tmp_path, records):
    """An incremental commit checks its new pair ids among themselves and against the base's parts,
    which it does not regroup: an id the base holds is refused and nothing is published; new ids
    commit, and the version's pairs are the base's plus the new ones."""
    ws = tmp_path / "ws"
    first, m1 = build_tables(records[:50])
    commit_version(ws, "inc", first, m1)
    with pytest.raises(StoreError, match=r"pairs: \d+ duplicate pair_id"):
        commit_version(ws, "inc", first, m1, base=1)
    assert list_versions(ws, "inc").num_rows == 1
    later, m2 = build_tables(records[50:100])
    assert not set(later["pairs"]["pair_id"].to_pylist()) & set(first["pairs"]["pair_id"].to_pylist())
    v2 = commit_version(ws, "inc", later, m2, base=1)
    assert (v2["version"], v2["parent"]) == (2, 1)
    assert v2["ledger"]["pairs"] == first["pairs"].num_rows + later["pairs"].num_rows
    assert query(ws, "SELECT count(DISTINCT pair_id) AS n FROM pairs WHERE dataset = 'inc' AND version = 2"
                 ).to_pylist() == [{"n": v2["ledger"]["pairs"]}]


def test_bad_inputs_are_store_errors(tmp_path, records):
    ws = tmp_path / "ws"
    tables, manifest = build_tables(records[:50])
    with pytest.raises(StoreError, match="invalid dataset name"):
        commit_version(ws, "../evil", tables, manifest)
    with pytest.raises(StoreError, match="schemas/pairs.yaml"):
        commit_version(ws, "ok", {**tables, "pairs": tables["pairs"].drop_columns(["weight"])}, manifest)
    with pytest.raises(StoreError, match="missing"):
        commit_version(ws, "ok", {k: v for k, v in tables.items() if k != "lineage"}, manifest)
    dup = pa.concat_tables([tables["pairs"], tables["pairs"].slice(0, 1)])
    with pytest.raises(StoreError, match="duplicate pair_id"):
        commit_version(ws, "ok", {**tables, "pairs": dup}, manifest)
    with pytest.raises(StoreError, match="config_hash"):
        commit_version(ws, "ok", tables, {k: v for k, v in manifest.items() if k != "config_hash"})
    with pytest.raises(StoreError, match="unknown dataset"):
        resolve(ws, "ok")
    commit_version(ws, "ok", tables, manifest)
    with pytest.raises(StoreError, match=r"unknown version ok@7 \(versions: 1\)"):
        resolve(ws, "ok@7")
    for bad in ("ok@x", "ok@0", "@3", ""):
        with pytest.raises(StoreError):
            VersionRef.parse(bad)
    assert VersionRef.parse("my.data-set_2@3") == VersionRef("my.data-set_2", 3)
    assert VersionRef.parse("ok") == VersionRef("ok") == VersionRef.parse("ok@latest")
    assert str(VersionRef.parse("ok@v4")) == "ok@4"


def test_manifest_values_become_plain_json(tmp_path, records):
    """numpy counts and NaN statistics (a mean over nothing) are stored as JSON ints and nulls."""
    import numpy as np
    ws = tmp_path / "ws"
    tables, manifest = build_tables(records[:60])
    manifest["stats"] = {"mean_margin": float("nan"), "pairs_np": np.int64(tables["pairs"].num_rows),
                         "ratio": np.float64(0.5), "by_signal": {"human_pairwise": np.int64(3)}}
    manifest["ledger"] = {k: np.int64(v) for k, v in manifest["ledger"].items()}
    final = commit_version(ws, "j", tables, manifest)
    assert final["stats"] == {"mean_margin": None, "pairs_np": tables["pairs"].num_rows, "ratio": 0.5,
                              "by_signal": {"human_pairwise": 3}}
    on_disk = json.loads((ws / "datasets/j/v1/manifest.json").read_text())
    assert on_disk == final and verify_version(ws, "j") == []


def test_diff_added_removed_changed_flipped(tmp_path, records):
    ws = tmp_path / "ws"
    a_recs, b_recs = records[:300], records[10:320]
    kept_a = [r["idx"] for r in a_recs[10:] if r["annotator1"] != 0]
    flip, rescore = set(kept_a[:4]), set(kept_a[10:13])
    ta, ma = build_tables(a_recs)
    tb, mb = build_tables(b_recs, flip=flip, rescore=rescore)
    commit_version(ws, "d", ta, ma)
    commit_version(ws, "d", tb, mb)
    got = diff_versions(ws, "d@1", "d")
    ids_a = set(ta["pairs"]["pair_id"].to_pylist())
    ids_b = set(tb["pairs"]["pair_id"].to_pylist())
    assert got["a"] == "d@1" and got["b"] == "d@2"
    assert got["pairs"] == {"a": len(ids_a), "b": len(ids_b)}
    assert got["added"]["count"] == len(ids_b - ids_a) > 0
    assert got["removed"]["count"] == len(ids_a - ids_b) > 0
    assert got["added"]["examples"] == sorted(ids_b - ids_a)[:5]
    assert got["removed"]["examples"] == sorted(ids_a - ids_b)[:5]
    by_rid = {r["input_ids"][0]: r["pair_id"] for r in tb["lineage"].to_pylist()}
    changed = {by_rid[f"pandalm:{i}"] for i in rescore if f"pandalm:{i}" in by_rid}
    assert got["changed"]["count"] == len(changed) >= 2
    assert set(got["changed"]["examples"]) == changed
    flipped = {by_rid[f"pandalm:{i}"] for i in flip if f"pandalm:{i}" in by_rid}
    assert got["flipped"]["count"] == len(flipped) >= 3
    assert set(got["flipped"]["examples"]) == flipped
    assert got["unchanged"]["count"] == len(ids_a & ids_b) - len(changed)
    same = diff_versions(ws, "d@2", "d@2")
    assert [same[k]["count"] for k in ("added", "removed", "changed", "flipped")] == [0, 0, 0, 0]


@pytest.fixture
def one_version(tmp_path, records):
    ws = tmp_path / "ws"
    commit_version(ws, "v", *build_tables(records[:150]))
    return ws, ws / "datasets" / "v" / "v1"


def test_verify_flipped_byte(one_version, reliability):
    ws, vdir = one_version
    path = vdir / "pairs.parquet"
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = verify_version(ws, "v@1")
    assert len(problems) == 1 and "changed file: pairs.parquet" in problems[0]
    reliability("Damaged version: flipped byte", "one byte flipped in pairs.parquet: verify reports the file", 1, 1)


def test_verify_missing_extra_and_manifest(one_version):
    ws, vdir = one_version
    (vdir / "ledger.parquet").unlink()
    (vdir / "notes.txt").write_text("hi")
    problems = verify_version(ws, "v")
    assert any("missing file: ledger.parquet" in p for p in problems)
    assert any("unexpected file: notes.txt" in p for p in problems)
    assert len(problems) == 2
    manifest = vdir / "manifest.json"
    manifest.chmod(0o644)
    manifest.write_text("{not json")
    problems = verify_version(ws, "v@1")
    assert len(problems) == 1 and "unreadable manifest" in problems[0]


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_version_fails_reads_loudly_and_verify_names_it(two_versions, damage, reliability):
    """A truncated or deleted Parquet file in v1: verify reports it, and every read that would
    include it (catalog views, the DuckDB CLI on catalog.duckdb) fails naming the file, never
    returning v2's rows alone."""
    ws, m1, m2 = two_versions
    path = ws / "datasets" / "pandalm" / "v1" / "lineage.parquet"
    if damage == "truncated":
        path.chmod(0o644)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()
    problems = verify_version(ws, "pandalm@1")
    assert len(problems) == 1 and "lineage.parquet" in problems[0]
    assert verify_version(ws, "pandalm@2") == []
    with pytest.raises(StoreError, match="lineage.parquet"):
        query(ws, "SELECT count(*) FROM lineage")
    try:  # a refresh does not paper over it: it fails (a truncated file), or the views still do
        refresh_catalog(ws)
    except StoreError as exc:
        assert damage == "truncated" and "lineage.parquet" in str(exc)
    with pytest.raises(StoreError, match="lineage.parquet"):
        query(ws, "SELECT count(*) FROM lineage WHERE version = 2")
    cli = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True)"
                          ".sql('SELECT count(*) FROM lineage').fetchall()", str(ws / "catalog.duckdb")],
                         capture_output=True, text=True)
    assert cli.returncode != 0 and "lineage.parquet" in cli.stderr
    # the other tables of the workspace still read
    assert query(ws, "SELECT count(*) AS n FROM pairs").to_pylist() == [{"n": m1["ledger"]["pairs"] + m2["ledger"]["pairs"]}]
    reliability(f"Damaged version: {damage} file", f"a {damage} lineage.parquet in a committed version: verify "
                "reports it; catalog reads (API and DuckDB CLI) fail naming it", 1, 1)
