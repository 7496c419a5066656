"""An OpenAI-compatible server (`vllm serve` on another machine), through the `openai` client.

Prompts travel as token ids, so the server sees exactly the tokens the other backends see.
Generation sends one request per prompt (the seed is per request) and scoring a batch of prompts
per request; requests run concurrently, and the server batches them on its side."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .types import Completion, Sampling


class OpenAIBackend:
    name = "openai"

    def __init__(self, path, max_model_len: int, base_url: str, served_model: str | None = None,
                 api_key: str = "EMPTY", batch_size: int = 32, concurrency: int = 16, timeout: float = 600, **_):
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=3)
        self.served_model = served_model or self.client.models.list().data[0].id
        self.batch_size, self.concurrency = batch_size, concurrency
        self.engine = f"openai-compatible server at {base_url} (model {self.served_model})"

    def _map(self, fn, jobs: list, size: int) -> list:
        batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return [x for part in pool.map(fn, batches) for x in part]

    def generate(self, prompts: list[list[int]], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        extra = {"return_token_ids": True}
        if sampling.json_schema:
            extra["structured_outputs"] = {"json": sampling.schema}

        def call(jobs):
            [(prompt, seed)] = jobs
            resp = self.client.completions.create(
                model=self.served_model, prompt=[prompt], n=sampling.n, max_tokens=sampling.max_tokens,
                temperature=sampling.temperature, top_p=sampling.top_p, seed=seed,
                stop=list(sampling.stop) or None, extra_body=extra)
            row = [Completion(c.text, c.finish_reason or "stop", len(prompt),
                              len((c.model_extra or {}).get("token_ids") or []))
                   for c in sorted(resp.choices, key=lambda c: c.index)]
            return [row]

        return self._map(call, list(zip(prompts, seeds)), 1)

    def logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        prompts = [ctx + cont for ctx, cont in items]

        def call(batch):
            resp = self.client.completions.create(model=self.served_model, prompt=batch, max_tokens=1,
                                                  temperature=0.0, extra_body={"prompt_logprobs": 0})
            return [(choice.index, (choice.model_extra or {}).get("prompt_logprobs")) for choice in
                    sorted(resp.choices, key=lambda c: c.index)]

        result = []
        for (ctx, cont), (_, entries) in zip(items, self._map(call, prompts, self.batch_size)):
            if entries is None:
                raise RuntimeError("the server returned no prompt_logprobs (is it vLLM?)")
            values = []
            for j, token in enumerate(cont):
                entry = entries[len(ctx) + j] or {}
                found = entry.get(str(token)) or entry.get(token)
                if found is None:
                    raise RuntimeError(f"the server returned no log-prob for continuation token {j}")
                values.append(found["logprob"])
            result.append(values)
        return result

    def close(self) -> None:
        self.client.close()
