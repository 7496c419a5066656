"""ModelRunner: the one way the pipeline calls a model. It encodes chats with the model's chat
template, serves what the request cache holds, sends only the misses to the engine in chunks,
and stores each chunk's results as soon as it is done, so a run killed midway resumes where it
stopped and no request is ever paid for twice. The engine starts only if something is missing."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .cache import RequestCache, request_key, request_seed
from .encode import ChatEncoder
from .refs import ModelRef, resolve
from .types import Completion, RowError, RunStats, Sampling, Scored

BACKENDS = ("vllm", "openai", "transformers")
DEFAULT_MAX_MODEL_LEN = 4096


def open_backend(kind: str, ref: ModelRef, max_model_len: int, **options):
    if kind == "vllm":
        from .vllm_backend import VLLMBackend as cls
    elif kind == "openai":
        from .openai_backend import OpenAIBackend as cls
    elif kind == "transformers":
        from .hf_backend import TransformersBackend as cls
    else:
        raise ValueError(f"unknown backend {kind!r}: choose {', '.join(BACKENDS)}")
    return cls(ref.path, max_model_len=max_model_len, **options)


@dataclass
class Result:
    key: str | None
    value: list[Completion] | Scored | None = None
    error: RowError | None = None
    cached: bool = False
    engine: str | None = None


class ModelRunner:
    def __init__(self, model: str | None = None, backend: str = "vllm", cache_path: str | Path | None = None,
                 max_model_len: int = DEFAULT_MAX_MODEL_LEN, chunk_size: int = 256, **backend_options):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose {', '.join(BACKENDS)}")
        self.ref = resolve(model)
        self.kind, self.options, self.max_model_len = backend, backend_options, max_model_len
        self.encoder = ChatEncoder(self.ref.path, max_model_len)
        self.cache = RequestCache(cache_path) if cache_path else None
        self.chunk_size = chunk_size
        self._backend = None
        self.stats = RunStats()

    @property
    def backend(self):
        if self._backend is None:
            self._backend = open_backend(self.kind, self.ref, self.max_model_len, **self.options)
        return self._backend

    @property
    def engine(self) -> str | None:
        return self._backend.engine if self._backend else None

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def generate(self, chats: list[list[dict]], sampling: Sampling) -> list[Result]:
        """n completions per chat; a chat the model cannot take gets a RowError instead."""
        encoded = [self.encoder.prompt(chat) for chat in chats]
        keys = [None if isinstance(e, RowError) else
                request_key("generate", self.ref.name, self.ref.revision, sampling.key(), chat)
                for chat, e in zip(chats, encoded)]

        def run(jobs):  # each request's seed derives from its key: independent across prompts
            return self.backend.generate([e for e, _ in jobs], sampling, [request_seed(k) for _, k in jobs])

        def load(v):
            return [Completion(**c) for c in v["completions"]]

        def dump(v):
            return {"completions": [asdict(c) for c in v]}

        return self._serve("generate", encoded, keys, run, load, dump)

    def logprobs(self, items: list[tuple[list[dict], str] | tuple[list[dict], str, str]]) -> list[Result]:
        """Log-probs of each continuation after its chat context. An item is (context, text) for an
        assistant reply, or (context, text, role) to score another role's turn (e.g. a user
        follow-up after an assistant reply)."""
        items = [(it[0], it[1], it[2] if len(it) > 2 else "assistant") for it in items]
        encoded = [self.encoder.scoring(ctx, cont, role) for ctx, cont, role in items]
        keys = [None if isinstance(e, RowError) else
                request_key("logprobs", self.ref.name, self.ref.revision, {},
                            {"context": ctx, "continuation": cont, **({"role": role} if role != "assistant" else {})})
                for (ctx, cont, role), e in zip(items, encoded)]

        def run(jobs):
            return self.backend.logprobs([e for e, _ in jobs])

        return self._serve("logprobs", encoded, keys, run, lambda v: Scored(v["token_logprobs"]),
                           lambda v: {"token_logprobs": v})

    def _serve(self, kind, encoded, keys, run, load, dump) -> list[Result]:
        results = [Result(k) for k in keys]
        for r, e in zip(results, encoded):
            if isinstance(e, RowError):
                r.error = e
                self.stats.add_error(e.kind)
        wanted = [k for k in keys if k is not None]
        found = self.cache.get_many(wanted) if self.cache else {}
        todo: dict[str, object] = {}  # key -> encoded input; identical requests run once
        for r, e in zip(results, encoded):
            if r.key is None:
                continue
            if r.key in found:
                r.value, r.cached, r.engine = load(found[r.key]), True, found[r.key].get("engine")
            else:
                todo.setdefault(r.key, e)
        self.stats.requests += len(wanted)
        self.stats.hits += sum(r.cached for r in results)
        self.stats.misses += len(todo)
        computed: dict[str, object] = {}
        pending = list(todo.items())
        for start in range(0, len(pending), self.chunk_size):
            chunk = pending[start:start + self.chunk_size]
            began = time.perf_counter()
            values = run([(e, k) for k, e in chunk])
            self.stats.engine_seconds += time.perf_counter() - began
            engine = self.engine
            batch = {k: {**dump(v), "engine": engine} for (k, _), v in zip(chunk, values)}
            if self.cache:
                self.cache.put_many(kind, self.ref.id, batch)
            computed.update(batch)
        for r in results:
            if r.key in computed:
                r.value, r.engine = load(computed[r.key]), computed[r.key]["engine"]
        return results
