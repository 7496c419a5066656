"""Crash-resume: the real `prefmill curate` is killed with SIGKILL at many points chosen here,
each rerun resumes the one before, and the final version is the one an uninterrupted run commits.
Meanwhile no partial version is ever visible, and nothing a killed run finished is computed again.

- A streamed curate (rated files): killed during reading and pairing, while the version's files
  are written, after the commit; a finished block's done-marker is never rewritten.
- An in-memory curate (real ShareGPT conversations, PandaLM votes, LAMP edits): killed while
  reading, mining and selecting, while committing, after the commit; a finished task's persisted
  result is never rewritten."""
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from cli_helpers import PREFMILL
from flows.local_server import prefect_server
from pipeline.config import CurateConfig
from pipeline.incremental import load_prior

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import rated_synth  # noqa: E402
from conftest import SAMPLES  # noqa: E402
from prefect.results import ResultRecord  # noqa: E402

CONFIG = """sources: {rated_block_bytes: 65536}
filters: {dedup: {semantic: false}}
mixing: {separability: "off"}
dashboard: {enabled: false}
"""
IN_PAIRING = [1, 3, 8, 15, 24, 35, 48, 62, 78]   # kills once this many blocks are done
KILLS = [*IN_PAIRING, "writing", "committed"]     # 11 kill points


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with prefect_server(tmp_path_factory.mktemp("prefect"), port) as url:
        yield url


def start(inputs: Path | list[Path], cfg: Path, ws: Path, url: str, dataset: str = "uf") -> subprocess.Popen:
    paths = [str(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    return subprocess.Popen([PREFMILL, "curate", *paths, "-d", dataset, "-w", str(ws), "-c", str(cfg), "--json"],
                            env={**os.environ, "PREFECT_API_URL": url}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def visible_versions(dataset: Path) -> list[str]:
    """Version folders a reader can see; each must be complete (its manifest written before the rename)."""
    seen = [p for p in dataset.iterdir() if not p.name.startswith(".tmp-")] if dataset.exists() else []
    assert all((p / "manifest.json").exists() for p in seen), [p.name for p in seen]
    return sorted(p.name for p in seen)


def markers(dataset: Path) -> dict[str, int]:
    return {m.name: m.stat().st_mtime_ns for m in dataset.glob(".tmp-run-*/parts/done-*.json")}


def kill_at(point, proc: subprocess.Popen, dataset: Path, done=markers, writing: str = ".tmp-run-*/pairs.parquet") -> None:
    """SIGKILL the run (its whole process group) once it reaches `point`: a count of `done` work,
    "writing" (a file matching `writing` exists) or "committed"."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        visible = visible_versions(dataset)
        if (point == "committed" and visible) or (point == "writing" and list(dataset.glob(writing))) \
                or (isinstance(point, int) and len(done(dataset)) >= point):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.002)
    raise AssertionError(f"the run ended before kill point {point!r}: {proc.communicate()[0][-2000:]}")


def table_rows_differ(a: Path, b: Path, table: str) -> int:
    con = duckdb.connect()
    sql = "SELECT count(*) FROM (SELECT * FROM '{}' EXCEPT ALL SELECT * FROM '{}')"
    return sum(con.execute(sql.format(x / f"{table}.parquet", y / f"{table}.parquet")).fetchall()[0][0]
               for x, y in ((a, b), (b, a)))


def test_sigkilled_runs_resume_to_the_uninterrupted_version(tmp_path, server, reliability):
    inputs = rated_synth.write(tmp_path / "uf.jsonl", 2500)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG)
    reference = start(inputs, cfg, tmp_path / "ref", server)
    out = reference.communicate(timeout=600)[0]
    assert reference.returncode == 0, out[-3000:]
    ref = Path(json.loads(out.strip().splitlines()[-1])["path"])

    ws = tmp_path / "ws"
    dataset = ws / "datasets" / "uf"
    before: dict[str, int] = {}
    for point in KILLS:
        proc = start(inputs, cfg, ws, server)
        kill_at(point, proc, dataset)
        now = markers(dataset)
        # blocks finished before the last kill were reused, not computed again
        assert {m: now[m] for m in before if m in now} == {m: t for m, t in before.items() if m in now}
        assert set(before) <= set(now) or point in ("committed",) or not now
        assert visible_versions(dataset) == (["v1"] if point == "committed" else [])
        before = now
    final = start(inputs, cfg, ws, server)
    out = final.communicate(timeout=600)[0]
    assert final.returncode == 0, out[-3000:]
    assert visible_versions(dataset) == ["v1"]  # the run after the post-commit kill made no second version
    got = dataset / "v1"
    for table in ("pairs", "lineage", "ledger", "quarantine", "signals"):
        assert table_rows_differ(ref, got, table) == 0, table
    ref_manifest, manifest = (json.loads((v / "manifest.json").read_text()) for v in (ref, got))
    assert manifest["counts"] == ref_manifest["counts"] and manifest["ledger"] == ref_manifest["ledger"]
    blocks = manifest["stats"]["resume"]["blocks"]
    # killed while writing, every block was done: all are reused but the file's end-of-file batch
    # (its fingerprint and record count), which a run always makes again
    assert manifest["stats"]["resume"]["reused"] == blocks - 1
    assert blocks > max(IN_PAIRING)
    assert not list(dataset.glob(".tmp-*"))
    lost = ref_manifest["ledger"]["inputs"] - manifest["ledger"]["inputs"]
    reliability("SIGKILL and resume", f"a streamed curate ({blocks} blocks) killed with SIGKILL at {len(KILLS)} points "
                "(while pairing, while writing, after the commit), each rerun resuming the last: the final version "
                "equals an uninterrupted run's, no partial version visible, no finished block recomputed",
                len(KILLS), len(KILLS), lost)


IN_MEMORY_CONFIG = """batch_size: 50
filters: {dedup: {semantic: false}}
mixing: {separability: "off"}
dashboard: {enabled: false}
"""


def task_results(dataset: Path) -> dict[str, int]:
    """The in-memory run's finished tasks: persisted results that Prefect can read back (a record
    torn by the kill is not one), by modification time."""
    done = {}
    for path in dataset.glob(".tmp-run-*/results/*"):
        st = path.stat()
        seen = (path, st.st_mtime_ns, st.st_size)
        if seen not in _readable:
            try:
                ResultRecord.deserialize(path.read_bytes())
                _readable[seen] = True
            except Exception:  # torn mid-write (or being written): not a finished task
                continue
        done[path.name] = st.st_mtime_ns
    return done


_readable: dict[tuple, bool] = {}  # files already read back whole, so polling stays cheap


def test_sigkilled_in_memory_runs_resume_to_the_uninterrupted_version(tmp_path, server, reliability):
    chats = gzip.decompress((SAMPLES / "sharegpt_multiturn.jsonl.gz").read_bytes()).decode().splitlines()
    (tmp_path / "chats.jsonl").write_text("\n".join(chats[:1000]) + "\n")
    inputs = [tmp_path / "chats.jsonl", SAMPLES / "pairwise_pandalm_human.jsonl", SAMPLES / "lamp_edits.jsonl"]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(IN_MEMORY_CONFIG)
    reference = start(inputs, cfg, tmp_path / "ref", server, "chats")
    out = reference.communicate(timeout=600)[0]
    assert reference.returncode == 0, out[-3000:]
    ref = Path(json.loads(out.strip().splitlines()[-1])["path"])
    tasks = json.loads((ref / "manifest.json").read_text())["stats"]["resume"]["tasks"]
    assert tasks >= 20  # 3 reads, 20 batches of conversations, edits, votes, the selection

    ws = tmp_path / "ws"
    dataset = ws / "datasets" / "chats"
    kills = [1, 3, 6, 9, 12, 15, 18, 21, tasks - 1, "writing", "committed"]  # the last count: all but select
    before: dict[str, int] = {}
    for point in kills:
        proc = start(inputs, cfg, ws, server, "chats")
        if isinstance(point, int):  # tasks finish in bunches: each kill waits for one more than the last saw
            point = max(point, len(before) + 1)
        kill_at(point, proc, dataset, task_results, ".tmp-run-*/version/pairs.parquet")
        now = task_results(dataset)
        # tasks finished before the last kill were loaded, not computed again
        assert {m: now.get(m) for m in before} == before or point == "committed"
        assert visible_versions(dataset) == (["v1"] if point == "committed" else [])
        before = now
    final = start(inputs, cfg, ws, server, "chats")
    out = final.communicate(timeout=600)[0]
    assert final.returncode == 0, out[-3000:]
    assert visible_versions(dataset) == ["v1"]  # the run after the post-commit kill made no second version
    assert not list(dataset.glob(".tmp-*"))     # and cleared the run's staging folder
    got = dataset / "v1"
    for table in ("pairs", "lineage", "ledger", "quarantine", "signals"):
        assert table_rows_differ(ref, got, table) == 0, table
    ref_manifest, manifest = (json.loads((v / "manifest.json").read_text()) for v in (ref, got))
    assert manifest["counts"] == ref_manifest["counts"] and manifest["ledger"] == ref_manifest["ledger"]
    # killed while committing, every task was done: the last run loaded them all
    assert manifest["stats"]["resume"] == {"tasks": tasks, "reused": tasks}
    # the prompt index the next incremental run reads (saved after the commit, or rebuilt when a
    # kill came first) is the uninterrupted run's
    cfg_model = CurateConfig.model_validate(yaml.safe_load(IN_MEMORY_CONFIG))
    index = [pq.read_table(load_prior(w, "chats", 1, cfg_model).index).sort_by("prompt_id") for w in (tmp_path / "ref", ws)]
    assert index[0].equals(index[1]) and index[0].num_rows and index[0]["key"].null_count == 0
    lost = ref_manifest["ledger"]["inputs"] - manifest["ledger"]["inputs"]
    reliability("SIGKILL and resume (in memory)", f"an in-memory curate of real conversations, votes and edits "
                f"({tasks} tasks) killed with SIGKILL at {len(kills)} points (while reading, mining and selecting, "
                "while committing, after the commit), each rerun resuming the last: the final version equals an "
                "uninterrupted run's, no partial version visible, no finished task recomputed",
                len(kills), len(kills), lost)
