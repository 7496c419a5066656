"""The candidates stage: prompts in, N sampled responses per prompt out, each row carrying the
policy, model revision, sampling parameters, seed and engine that produced it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipeline.hashing import prompt_ids, text_hash
from pipeline.models.cache import request_seed
from pipeline.schema import MESSAGE, conform, empty, from_rows
from pipeline.sources import readers
from pipeline.sources.batch import quarantine_row
from pipeline.sources.fields import Ctx, RecordError
from pipeline.sources.readers import parse_record
from pipeline.sources.prompts import chat


@dataclass
class Prompts:
    table: pa.Table       # record_id, line, prompt
    quarantine: pa.Table
    input: dict           # path, sha256, bytes, records


def read_prompts(path, max_record_bytes: int = 1_000_000, max_text_chars: int = 100_000) -> Prompts:
    """JSONL (or JSON, .gz, Parquet) of {"prompt": "text"}, {"prompt"|"messages": [chat]} or
    ShareGPT {"conversations": [...]}; a chat must end with a user turn. Bad rows are quarantined."""
    path = Path(path)
    rows, bad, n = [], [], 0
    try:
        sha256, size = readers.fingerprint(path)
        for rec in readers.iter_records(path):
            n += 1
            record_id = f"{path.name}:{rec.line}"
            try:
                rows.append({"record_id": record_id, "line": rec.line,
                             "prompt": chat(parse_record(rec, max_record_bytes), Ctx(record_id, max_text_chars))})
            except RecordError as exc:
                bad.append(quarantine_row(record_id, str(path), rec.line, exc.kind, exc.message, rec.raw))
    except (readers.UnreadableFile, OSError) as exc:
        raise RecordError("unreadable_file", f"{path}: {exc}") from exc
    table = pa.Table.from_pylist(rows, schema=pa.schema([("record_id", pa.string()), ("line", pa.int64()),
                                                         ("prompt", pa.list_(MESSAGE))]))
    return Prompts(table, from_rows("quarantine", bad),
                   {"path": str(path), "sha256": sha256, "bytes": size, "records": n})


def candidates_table(prompts: pa.Table, source: str, results: list, runner, sampling) -> tuple[pa.Table, pa.Table]:
    """One row per sample; a prompt the model could not take is quarantined with its reason."""
    rows, bad = [], []
    pids = prompt_ids(prompts["prompt"]).to_pylist() if prompts.num_rows else []
    sampling_json = json.dumps(sampling.key(), sort_keys=True)
    for row, pid, result in zip(prompts.to_pylist(), pids, results):
        if result.error is not None:
            bad.append(quarantine_row(row["record_id"], source, row["line"], result.error.kind,
                                      result.error.message, json.dumps({"prompt": row["prompt"]}).encode()))
            continue
        for k, c in enumerate(result.value):
            rows.append({"candidate_id": text_hash(f"{result.key}:{k}"), "prompt_id": pid,
                         "record_id": row["record_id"], "prompt": row["prompt"], "response": c.text,
                         "sample_index": k, "finish_reason": c.finish_reason, "prompt_tokens": c.prompt_tokens,
                         "completion_tokens": c.completion_tokens, "policy": runner.ref.name,
                         "model_revision": runner.ref.revision, "backend": runner.kind,
                         "engine": result.engine or "", "sampling": sampling_json,
                         "seed": request_seed(result.key), "request_key": result.key, "cached": result.cached})
    table = conform("candidates", from_rows("candidates", rows)) if rows else empty("candidates")
    return table, from_rows("quarantine", bad)
