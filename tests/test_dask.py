"""Curation on Dask: with `dask_address`, each block of a rated file is parsed, paired, filtered
and spilled by a worker of a real `distributed` cluster (a LocalCluster of two worker processes
here), and each batch of an in-memory run (real conversations, votes and edits) is mined there.
Either way the version is the one the single-process run commits, table for table. A worker
killed mid-run costs nothing: Dask runs its blocks again elsewhere."""
import gzip
import json
import os
import signal
import threading
import time

import pytest
from distributed import Client, LocalCluster

from flows.curate import curate
from pipeline.store import query
from conftest import SAMPLES
from rated_files import inject_faults, lamp_as_ultrafeedback, pandalm_as_candidates, write

CONFIG = {"dashboard": {"enabled": False}, "mixing": {"separability": "off"},
          "sources": {"rated_block_bytes": 32768},  # about 50 blocks
          "filters": {"dedup": {"semantic": False}}}
TABLES = ("pairs", "lineage", "ledger", "quarantine")


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      worker_dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    lines, _ = inject_faults(lamp_as_ultrafeedback())
    return [write(folder / "lamp_uf.jsonl", lines),
            write(folder / "pandalm.jsonl", [json.dumps(r) for r in pandalm_as_candidates()])]


@pytest.fixture(scope="module")
def single(inputs, tmp_path_factory):
    """A workspace holding the single-process run's version (dataset `local`) and its manifest."""
    ws = tmp_path_factory.mktemp("dask-ws")
    return ws, curate([str(p) for p in inputs], "local", str(ws), CONFIG)


def differing(ws, a: str, b: str) -> dict:
    out = {}
    for table in TABLES:
        sql = (f"SELECT count(*) AS n FROM (SELECT * EXCLUDE (dataset) FROM {table} WHERE dataset = '{a}' "
               f"EXCEPT ALL SELECT * EXCLUDE (dataset) FROM {table} WHERE dataset = '{b}')")
        out[table] = (query(ws, sql)["n"][0].as_py(), query(ws, sql.replace(f"'{a}'", "'@'").replace(
            f"'{b}'", f"'{a}'").replace("'@'", f"'{b}'"))["n"][0].as_py())
    return out


def test_dask_workers_commit_the_single_process_version(inputs, single, cluster):
    ws, local = single
    spread = curate([str(p) for p in inputs], "dask", str(ws), CONFIG, dask_address=cluster.scheduler_address)
    assert differing(ws, "local", "dask") == {t: (0, 0) for t in TABLES}
    assert local["ledger"]["pairs"] > 100
    for key in ("counts", "ledger", "inputs"):
        assert spread[key] == local[key], key
    # the blocks ran on both worker processes, not in this one
    dask = spread["stats"]["dask"]
    assert dask["blocks"] > 30
    assert len(dask["worker_pids"]) == 2 and os.getpid() not in dask["worker_pids"]


def test_a_worker_killed_mid_run_loses_nothing(inputs, single, reliability):
    """SIGKILL one worker process once blocks are flowing: its blocks are computed again on the
    other worker (or its restarted replacement), and the version is the single-process one."""
    ws, local = single
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      worker_dashboard_address=None) as c, \
            Client(c.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_when_busy():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if any(client.processing().values()):  # a block is on a worker
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        spread = curate([str(p) for p in inputs], "killed", str(ws), CONFIG, dask_address=c.scheduler_address)
        killer.join()
    diff = differing(ws, "local", "killed")
    lost = local["ledger"]["inputs"] - spread["ledger"]["inputs"]
    reliability("Dask worker killed", "a streamed curate on 2 Dask worker processes, one SIGKILLed while blocks "
                "were running: the version equals the single-process run's", 1,
                int(bool(killed) and diff == {t: (0, 0) for t in TABLES}), lost)
    assert killed
    assert diff == {t: (0, 0) for t in TABLES} and lost == 0


def test_dask_workers_mine_an_in_memory_run_as_one_process_does(cluster, tmp_path):
    chats = gzip.decompress((SAMPLES / "sharegpt_multiturn.jsonl.gz").read_bytes()).decode().splitlines()
    (tmp_path / "chats.jsonl").write_text("\n".join(chats[:600]) + "\n")
    inputs = [str(p) for p in (tmp_path / "chats.jsonl", SAMPLES / "pairwise_pandalm_human.jsonl",
                               SAMPLES / "lamp_edits.jsonl")]
    config = {**CONFIG, "batch_size": 50}
    ws = tmp_path / "ws"
    local = curate(inputs, "local", str(ws), config)
    spread = curate(inputs, "dask", str(ws), config, dask_address=cluster.scheduler_address)
    assert differing(ws, "local", "dask") == {t: (0, 0) for t in TABLES}
    assert {"edit", "human_pairwise"} <= set(local["stats"]["pairs_by_signal"])
    for key in ("counts", "ledger", "inputs"):
        assert spread[key] == local[key], key
    dask = spread["stats"]["dask"]  # 12 + 4 batches and the votes, mined in both workers, not here
    assert dask["mined"] == 17 and len(dask["worker_pids"]) == 2 and os.getpid() not in dask["worker_pids"]
