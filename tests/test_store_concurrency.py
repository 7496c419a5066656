"""Concurrent writers: eight processes committing to one dataset at once get eight distinct,
intact versions, and the catalog sees all of them."""
from __future__ import annotations

import multiprocessing as mp
import queue

from pipeline.store import list_versions, query, verify_version
from test_store_sample import commit_worker

WRITERS = 8


def test_eight_concurrent_writers(tmp_path, reliability):
    ws = tmp_path / "ws"
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=commit_worker, args=(str(ws), 40 * i, barrier, results)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    outcomes = []
    try:
        for _ in procs:
            outcomes.append(results.get(timeout=180))
    except queue.Empty:
        pass
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert [o for o in outcomes if o[0] != "ok"] == []
    assert sorted(v for _, v in outcomes) == list(range(1, WRITERS + 1))

    listed = list_versions(ws, "race")
    assert listed["version"].to_pylist() == list(range(1, WRITERS + 1))
    assert listed["parent"].to_pylist() == [None, *range(1, WRITERS)]
    assert not [p for p in (ws / "datasets" / "race").iterdir() if p.name.startswith(".tmp-")]
    for v in range(1, WRITERS + 1):
        assert verify_version(ws, f"race@{v}") == []
    counts = query(ws, "SELECT version, count(*) AS n FROM pairs WHERE dataset = 'race' GROUP BY ALL ORDER BY 1")
    expected = dict(zip(listed["version"].to_pylist(), listed["pairs"].to_pylist()))
    assert dict(zip(counts["version"].to_pylist(), counts["n"].to_pylist())) == expected
    # each version holds the slice its writer committed: versions differ in content, not just number
    sets = query(ws, "SELECT md5(string_agg(pair_id, ',' ORDER BY pair_id)) AS h FROM pairs GROUP BY version")
    assert len(set(sets["h"].to_pylist())) == WRITERS
    lost = sum(listed["pairs"].to_pylist()) - sum(counts["n"].to_pylist())
    reliability("Concurrent writers", "processes committing versions of one dataset at once", WRITERS,
                sum(not verify_version(ws, f"race@{v}") for v in range(1, WRITERS + 1)), lost)
