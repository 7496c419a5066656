"""Store test data built from the real PandaLM human pairwise sample (data/samples), plus the
helpers the other test_store*/test_export* modules share (and the worker of the concurrency test,
which must live in an importable module for multiprocessing's spawn start method)."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa

from pipeline.hashing import pair_ids, prompt_ids
from pipeline.schema import from_rows, schema

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "pairwise_pandalm_human.jsonl"
SOURCE = "data/samples/pairwise_pandalm_human.jsonl"


def load_records() -> list[dict]:
    """Every record of the sample, with its 1-based line number."""
    lines = SAMPLE.read_bytes().splitlines()
    return [{**json.loads(line), "_line": n, "_raw": line} for n, line in enumerate(lines, 1)]


def build_tables(records: list[dict], flip: set[int] = frozenset(),
                 rescore: set[int] = frozenset()) -> tuple[dict[str, pa.Table], dict]:
    """pairs / lineage / quarantine / ledger tables and a caller manifest for `records`.

    prompt = the user's instruction + input; chosen/rejected by annotator1's label (ties are
    filtered); a repeated pair is filtered as a duplicate. The sample really has six records whose
    response is the JSON value `true`, not a string: those are quarantined as wrong_type. Records
    whose idx is in `flip` get chosen and rejected swapped; those in `rescore` get their scores changed."""
    cand, ledger, quarantine = [], [], []
    for r in records:
        rid = f"pandalm:{r['idx']}"
        wrong = [k for k in ("instruction", "input", "response1", "response2") if not isinstance(r[k], str)]
        if wrong:
            message = f"{wrong[0]} is {type(r[wrong[0]]).__name__}, not a string"
            quarantine.append({"record_id": rid, "source_file": SOURCE, "line": r["_line"],
                               "error_kind": "wrong_type", "message": message, "raw": r["_raw"]})
            ledger.append({"record_id": rid, "source_file": SOURCE, "line": r["_line"], "status": "quarantined",
                           "reason": "wrong_type"})
            continue
        labels = [r["annotator1"], r["annotator2"], r["annotator3"]]
        if labels[0] == 0:
            ledger.append({"record_id": rid, "source_file": SOURCE, "line": r["_line"], "status": "filtered",
                           "reason": "tie: annotator1 judged both responses equal"})
            continue
        win, lose = (r["response1"], r["response2"]) if labels[0] == 1 else (r["response2"], r["response1"])
        votes_win, votes_lose = labels.count(labels[0]), labels.count(3 - labels[0])
        if r["idx"] in flip:
            win, lose, votes_win, votes_lose = lose, win, votes_lose, votes_win
        if r["idx"] in rescore:
            votes_win += 10
        text = r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")
        cand.append({"rid": rid, "line": r["_line"], "prompt": [{"role": "user", "content": text}],
                     "chosen": [{"role": "assistant", "content": win}],
                     "rejected": [{"role": "assistant", "content": lose}],
                     "votes": (float(votes_win), float(votes_lose)), "labels": labels})
    msg = schema("pairs").field("prompt").type
    cols = {k: pa.array([c[k] for c in cand], msg) for k in ("prompt", "chosen", "rejected")}
    ids = pair_ids(cols["prompt"], cols["chosen"], cols["rejected"]).to_pylist()
    pids = prompt_ids(cols["prompt"]).to_pylist()
    pairs, lineage, seen = [], [], set()
    for c, pid, prid in zip(cand, ids, pids):
        if pid in seen:
            ledger.append({"record_id": c["rid"], "source_file": SOURCE, "line": c["line"], "status": "filtered",
                           "reason": "duplicate_pair"})
            continue
        seen.add(pid)
        ledger.append({"record_id": c["rid"], "source_file": SOURCE, "line": c["line"], "status": "kept",
                       "reason": None})
        sc, sr = c["votes"]
        pairs.append({"pair_id": pid, "prompt_id": prid, "prompt": c["prompt"], "chosen": c["chosen"],
                      "rejected": c["rejected"], "score_chosen": sc, "score_rejected": sr, "margin": sc - sr,
                      "source": "judgments", "signal": "human_pairwise", "annotator": "human:pandalm",
                      "weight": min(sc / 3.0, 1.0), "recipe": "implicit"})
        lineage.append({"pair_id": pid, "input_ids": [c["rid"]], "source": "judgments",
                        "signal": "human_pairwise", "recipe": "implicit", "chosen_origin": "log",
                        "rejected_origin": "log", "signal_value": sc / 3.0,
                        "evidence": json.dumps({"labels": c["labels"]}), "generator": None, "annotator": None,
                        "decisions": [{"filter": "tie", "passed": True, "reason": ""}],
                        "kept": True, "dropped_by": None})
    tables = {"pairs": from_rows("pairs", pairs), "lineage": from_rows("lineage", lineage),
              "quarantine": from_rows("quarantine", quarantine), "ledger": from_rows("ledger", ledger)}
    return tables, caller_manifest(tables)


def caller_manifest(tables: dict[str, pa.Table]) -> dict:
    """What a flow would pass: dataset-level facts, with the ledger counted independently here."""
    status = Counter(tables["ledger"]["status"].to_pylist())
    config = {"signals": {"pairwise": {"tie_rule": "annotator1"}}}
    data = SAMPLE.read_bytes()
    return {"flow_run_id": "test-run", "config": config,
            "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
            "code_version": "test", "counts": {"candidates": tables["lineage"].num_rows},
            "inputs": [{"path": SOURCE, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                        "records": data.count(b"\n")}],
            "ledger": {"inputs": tables["ledger"].num_rows, "kept": status["kept"],
                       "filtered": status["filtered"], "quarantined": status["quarantined"],
                       "pairs": tables["pairs"].num_rows},
            "stats": {"mean_margin": None}}


def commit_worker(workspace: str, start: int, barrier, results) -> None:
    """One concurrent writer (spawned process): build a version from a slice, wait for the others,
    commit, report the version number."""
    from pipeline.store import commit_version
    tables, manifest = build_tables(load_records()[start:start + 60])
    barrier.wait(timeout=120)
    try:
        results.put(("ok", commit_version(Path(workspace), "race", tables, manifest)["version"]))
    except Exception as exc:  # noqa: BLE001 - report to the parent test
        results.put(("error", repr(exc)))

