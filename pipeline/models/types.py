"""What goes into and comes out of a model, whatever the backend."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Sampling:
    """Backend-independent sampling parameters; `key()` is what the request cache hashes."""
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()
    json_schema: str | None = None  # compact JSON text of a schema: output is constrained to it

    def __post_init__(self):
        if self.n < 1 or self.max_tokens < 1:
            raise ValueError(f"n and max_tokens must be >= 1 (got n={self.n}, max_tokens={self.max_tokens})")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1 (got {self.temperature}, {self.top_p})")

    @classmethod
    def make(cls, json_schema: dict | str | None = None, stop=(), **kw) -> "Sampling":
        if isinstance(json_schema, str):
            json_schema = json.loads(json_schema)
        # compact but in the caller's key order: the grammar emits properties in schema order
        text = json.dumps(json_schema, separators=(",", ":")) if json_schema is not None else None
        return cls(json_schema=text, stop=tuple(stop or ()), **kw)

    def key(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if self.json_schema is not None:
            d["json_format"] = "compact"  # no free whitespace (see the backends)
        return d

    @property
    def schema(self) -> dict | None:
        return json.loads(self.json_schema) if self.json_schema is not None else None


@dataclass
class Completion:
    text: str
    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Scored:
    """Log-probs of a continuation's own tokens (no role header, no end-of-turn token)."""
    token_logprobs: list[float]

    @property
    def n_tokens(self) -> int:
        return len(self.token_logprobs)

    @property
    def sum(self) -> float:
        return float(sum(self.token_logprobs))

    @property
    def mean(self) -> float:
        return self.sum / self.n_tokens if self.token_logprobs else 0.0


@dataclass
class RowError:
    """A request the model cannot serve (e.g. longer than the context window); the row is
    quarantined with this reason and the batch goes on."""
    kind: str
    message: str


@dataclass
class RunStats:
    requests: int = 0
    hits: int = 0
    misses: int = 0
    errors: int = 0
    engine_seconds: float = 0.0
    error_kinds: dict = field(default_factory=dict)

    def add_error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
