"""Build the annotators a config names, sharing one ModelRunner (one engine) per model endpoint
and one request cache per workspace."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from pipeline.config_annotate import AnnotatorSpec, ModelEndpoint


class AnnotatorConfigError(ValueError):
    """An annotator spec that cannot be built; the message names the annotator and the problem."""


def annotator_class(kind: str):
    from pipeline.annotate.density_ratio import DensityRatio
    from pipeline.annotate.flr import FollowUpLikelihood
    from pipeline.annotate.judge_pairwise import PairwiseJudge
    from pipeline.annotate.judge_rubric import RubricJudge
    from pipeline.annotate.reward import RewardEnsemble

    return {"rubric_judge": RubricJudge, "pairwise_judge": PairwiseJudge, "flr": FollowUpLikelihood,
            "density_ratio": DensityRatio, "rm_ensemble": RewardEnsemble}[kind]


RESERVED = {"name", "kind", "cost", "runner", "strong", "weak", "members", "cache", "tpl", "counts"}


def check_options(spec: AnnotatorSpec) -> None:
    """Unknown or reserved option names are an error (a typo must not silently do nothing)."""
    fields = {f.name for f in dataclasses.fields(annotator_class(spec.type)) if f.init} - RESERVED
    bad = sorted(set(spec.options) - fields)
    if bad:
        raise AnnotatorConfigError(f"annotator {spec.name!r} ({spec.type}): unknown option(s) {bad}; "
                                   f"known: {sorted(fields)}")


class Runners:
    """One ModelRunner per endpoint, created on first use and closed together."""

    def __init__(self, models: dict[str, ModelEndpoint], cache_path: Path | None):
        self.models, self.cache_path, self.open = models, cache_path, {}

    def get(self, key: str):
        if key not in self.open:
            from pipeline.models import ModelRunner

            m = self.models[key]
            extra = {"base_url": m.base_url} if m.base_url else {}
            self.open[key] = ModelRunner(m.model, backend=m.backend, cache_path=self.cache_path,
                                         max_model_len=m.max_model_len, **extra)
        return self.open[key]

    def close(self) -> None:
        for runner in self.open.values():
            runner.close()
        self.open.clear()


def build(spec: AnnotatorSpec, runners: Runners):
    check_options(spec)
    cls = annotator_class(spec.type)
    try:
        if spec.type == "density_ratio":
            return cls(spec.name, strong=runners.get(spec.model), weak=runners.get(spec.weak_model), **spec.options)
        if spec.type == "rm_ensemble":
            from pipeline.models.cache import RequestCache

            cache = RequestCache(runners.cache_path) if runners.cache_path else None
            return cls(spec.name, members=list(spec.members), cache=cache, **spec.options)
        return cls(spec.name, runner=runners.get(spec.model), **spec.options)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        raise AnnotatorConfigError(f"annotator {spec.name!r} ({spec.type}): {exc}") from exc


def build_annotators(specs: list[AnnotatorSpec], runners: Runners, only: list[str] | None = None) -> list:
    chosen = specs if not only else [a for a in specs if a.name in only]
    missing = sorted(set(only or []) - {a.name for a in specs})
    if missing:
        raise AnnotatorConfigError(f"no annotator named {missing}; configured: {[a.name for a in specs]}")
    return [build(s, runners) for s in chosen]
