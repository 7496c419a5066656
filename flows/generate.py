"""The `generate` Prefect flow: read prompts -> sample N responses per prompt, a task per chunk,
all through one engine started once for the whole run -> write the candidates table.

Each chunk's results are in the request cache the moment the chunk ends, so a run killed midway
and started again pays only for the chunks it had not finished; the manifest counts the hits."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.plain_flow import plain_flow
from pipeline.atomic import write_bytes, write_parquet
from pipeline.candidates import candidates_table, read_prompts
from pipeline.curation import code_version
from pipeline.models import ModelRunner, Sampling
from pipeline.schema import conform


class NoPrompts(RuntimeError):
    """No input row was a usable prompt."""


@task(name="read-prompts", cache_policy=NO_CACHE)
def read(path: str):
    return read_prompts(path)


@task(name="generate-chunk", cache_policy=NO_CACHE, task_run_name="generate-{part}")
def generate_chunk(part: int, runner: ModelRunner, chats: list, sampling: Sampling):
    return runner.generate(chats, sampling)


def outputs(out: str | Path) -> dict[str, Path]:
    out = Path(out)
    stem = out.name[:-len(".parquet")] if out.name.endswith(".parquet") else out.name
    return {"candidates": out, "quarantine": out.with_name(f"{stem}.quarantine.parquet"),
            "manifest": out.with_name(f"{stem}.manifest.json")}


@plain_flow(name="generate", log_prints=False)
def generate(input: str, out: str, workspace: str, model: str | None = None, backend: str = "vllm",
             sampling: dict | None = None, chunk_size: int = 256, max_model_len: int = 4096,
             backend_options: dict | None = None) -> dict:
    log = get_run_logger()
    began = time.perf_counter()
    sampling = Sampling.make(**(sampling or {}))
    prompts = read(input)
    if not prompts.table.num_rows:
        raise NoPrompts(f"{input}: none of {prompts.input['records']} rows is a usable prompt "
                        f"({prompts.quarantine.num_rows} quarantined)")
    runner = ModelRunner(model, backend, cache_path=Path(workspace) / "cache" / "requests.sqlite",
                         max_model_len=max_model_len, chunk_size=chunk_size, **(backend_options or {}))
    chats = prompts.table["prompt"].to_pylist()
    results = []
    try:
        for part, start in enumerate(range(0, len(chats), chunk_size)):
            results += generate_chunk(part, runner, chats[start:start + chunk_size], sampling)
            s = runner.stats
            log.info(f"{len(results)}/{len(chats)} prompts: {s.hits} cached, {s.misses} generated, "
                     f"{s.errors} refused")
        engine = runner.engine
    finally:
        runner.close()
    table, refused = candidates_table(prompts.table, prompts.input["path"], results, runner, sampling)
    quarantine = conform("quarantine", pa.concat_tables([prompts.quarantine, refused]))
    s = runner.stats
    manifest = {
        "kind": "candidates", "created": datetime.now(timezone.utc).isoformat(),
        "flow_run_id": str(flow_run.get_id() or ""), "code_version": code_version(),
        "input": prompts.input,
        "model": {"name": runner.ref.name, "revision": runner.ref.revision, "path": str(runner.ref.path),
                  "max_model_len": max_model_len},
        "backend": backend, "engine": engine, "sampling": sampling.key(),
        "counts": {"inputs": prompts.input["records"], "prompts": prompts.table.num_rows,
                   "quarantined": quarantine.num_rows, "generated_prompts": prompts.table.num_rows - refused.num_rows,
                   "candidates": table.num_rows},
        "cache": {"requests": s.requests, "hits": s.hits, "misses": s.misses},
        "errors": s.error_kinds, "engine_seconds": round(s.engine_seconds, 3),
        "seconds": round(time.perf_counter() - began, 3),
    }
    assert manifest["counts"]["inputs"] == manifest["counts"]["generated_prompts"] + quarantine.num_rows
    paths = outputs(out)
    metadata = {**(table.schema.metadata or {}), b"prefmill": json.dumps(manifest).encode()}
    write_parquet(table.replace_schema_metadata(metadata), paths["candidates"])
    write_parquet(quarantine, paths["quarantine"])
    write_bytes(paths["manifest"], json.dumps(manifest, indent=2).encode())
    return manifest
