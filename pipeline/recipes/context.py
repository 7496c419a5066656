"""What every recipe shares: the run's model runners (one engine per endpoint), the policy pi_t,
sampling parameters, and the lineage of a model-written side."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pipeline.annotate.registry import Runners, build
from pipeline.config import ConversationSignalConfig
from pipeline.config_annotate import AnnotatorSpec
from pipeline.config_recipes import PolicyConfig, SamplingConfig
from pipeline.models import ModelRunner, Result, Sampling
from pipeline.models.cache import request_seed


def sampling_of(cfg: SamplingConfig, n: int = 1) -> Sampling:
    return Sampling.make(n=n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=cfg.seed)


@dataclass
class RecipeContext:
    runners: Runners
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    conversations: ConversationSignalConfig = field(default_factory=ConversationSignalConfig)
    log: Callable[[str], None] = lambda message: None

    def runner(self, key: str | None = None) -> ModelRunner:
        """The runner of a `models` key; None is the policy's."""
        return self.runners.get(key or self.policy.model)

    def scorer(self, spec: AnnotatorSpec):
        return build(spec, self.runners)

    @property
    def policy_name(self) -> str:
        return self.policy.name or self.runner().ref.name

    @property
    def policy_origin(self) -> str:
        return f"policy:{self.policy_name}@iter{self.policy.iteration}"

    def origin(self, key: str | None) -> str:
        """Who writes with the model of `key`: the policy, or another generator."""
        if key is None or key == self.policy.model:
            return self.policy_origin
        return f"generator:{self.runner(key).ref.name}"

    def generated(self, runner: ModelRunner, sampling: Sampling, result: Result, k: int, origin: str) -> dict:
        """Lineage of the k-th sample of a request: what it takes to reproduce it."""
        c = result.value[k]
        return {"origin": origin, "model": runner.ref.name, "revision": runner.ref.revision,
                "backend": runner.kind, "engine": result.engine, "sampling": sampling.key(),
                "seed": request_seed(result.key), "sample_index": k, "request_key": result.key,
                "iteration": self.policy.iteration if origin == self.policy_origin else None,
                "finish_reason": c.finish_reason, "completion_tokens": c.completion_tokens, "cached": result.cached}
