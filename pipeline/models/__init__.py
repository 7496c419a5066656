"""One protocol, three backends (vLLM in-process, an OpenAI-compatible server, transformers),
behind a request cache. See ModelRunner."""
from .refs import DEFAULT_MODEL, ModelError, ModelRef, resolve
from .runner import BACKENDS, DEFAULT_MAX_MODEL_LEN, ModelRunner, Result
from .types import Completion, RowError, RunStats, Sampling, Scored

__all__ = ["BACKENDS", "DEFAULT_MAX_MODEL_LEN", "DEFAULT_MODEL", "Completion", "ModelError", "ModelRef",
           "ModelRunner", "Result", "RowError", "RunStats", "Sampling", "Scored", "resolve"]
