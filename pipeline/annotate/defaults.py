"""The annotators prefmill runs on CPU with its own models when a config names none (used by
`prefmill eval-annotators`): both judges on the default SmolLM2-135M-Instruct, FLR, the density
ratio of SmolLM2 over its half-depth sibling, and an ensemble of the reward models trained into
WORKSPACE/rm (when there are any: `prefmill rm train`)."""
from __future__ import annotations

from pathlib import Path

from pipeline.config_annotate import AnnotateConfig, AnnotatorSpec, ModelEndpoint

WEAK_MODEL = "SmolLM2-135M-Instruct-half"


def rm_members(workspace: Path) -> list[str]:
    root = workspace / "rm"
    return sorted(str(p) for p in root.glob("*") if (p / "rm.json").exists() or (p / "config.json").exists()) \
        if root.is_dir() else []


def cpu_models(backend: str = "vllm") -> dict[str, ModelEndpoint]:
    return {"default": ModelEndpoint(backend=backend), "weak": ModelEndpoint(model=WEAK_MODEL, backend=backend)}


def cpu_annotators(workspace: Path) -> AnnotateConfig:
    """The annotators (on the endpoints of `cpu_models`)."""
    specs = [
        AnnotatorSpec(name="rubric_judge", type="rubric_judge"),
        AnnotatorSpec(name="pairwise_judge", type="pairwise_judge"),
        AnnotatorSpec(name="pairwise_judge_lp", type="pairwise_judge", options={"verdict_from": "logprobs"}),
        AnnotatorSpec(name="flr", type="flr"),
        AnnotatorSpec(name="cdr", type="density_ratio", weak_model="weak"),
        AnnotatorSpec(name="cdr_per_token", type="density_ratio", weak_model="weak", options={"per_token": True}),
    ]
    members = rm_members(workspace)
    if members:
        specs.append(AnnotatorSpec(name="rm_ensemble", type="rm_ensemble", members=members))
    return AnnotateConfig(annotators=specs)
