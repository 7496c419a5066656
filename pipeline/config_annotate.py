"""The `annotate` section of the curation config: the annotators to run on candidate pairs, and
how their verdicts combine into the consistency and margin filters; plus the model endpoints
(the top-level `models` section) that annotators and generation recipes name. Annotation is off
by default (it costs model time); `data/recipes/annotated.yaml` turns it on."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ANNOTATOR_TYPES = ("rubric_judge", "pairwise_judge", "flr", "density_ratio", "rm_ensemble")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEndpoint(_Strict):
    model: str = "SmolLM2-135M-Instruct"   # a prepared model name or a local folder
    backend: Literal["vllm", "openai", "transformers"] = "vllm"
    base_url: str | None = None            # the openai backend's server
    max_model_len: int = 4096


class AnnotatorSpec(_Strict):
    name: str                              # column prefix in lineage; unique per run
    type: Literal["rubric_judge", "pairwise_judge", "flr", "density_ratio", "rm_ensemble"]
    model: str = "default"                 # key into `models` (the strong model for density_ratio)
    weak_model: str | None = None          # density_ratio only
    members: list[str] = Field(default_factory=list)  # rm_ensemble: reward-model folders
    options: dict = Field(default_factory=dict)       # the annotator's own settings (see README)


class CombineConfig(_Strict):
    include_signal: bool = True            # the implicit signal that made the pair votes for its chosen side
    min_agreement: float = 0.5             # share of non-abstaining votes that must back the chosen side
    require_dual_order: bool = False       # drop pairs a pairwise judge flips on order swap (else: abstain)
    min_ensemble_vote: float = 0.75        # rm_ensemble members that must prefer chosen (Secrets-II, S16)
    min_margin_z: float | None = None      # mean annotator margin in z units; None = no margin filter


class AnnotateConfig(_Strict):
    annotators: list[AnnotatorSpec] = Field(default_factory=list)
    combine: CombineConfig = CombineConfig()

    @field_validator("annotators")
    @classmethod
    def _unique_names(cls, value: list[AnnotatorSpec]) -> list[AnnotatorSpec]:
        names = [a.name for a in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"annotator names must be unique; repeated: {dup}")
        return value


def check_annotator(a: AnnotatorSpec, models: dict[str, ModelEndpoint]) -> None:
    """Everything about a spec that can be checked before any model loads."""
    for key in (a.model, a.weak_model):
        if key is not None and key not in models:
            raise ValueError(f"annotator {a.name!r}: model {key!r} is not in `models` ({', '.join(models)})")
    if a.type == "density_ratio" and a.weak_model is None:
        raise ValueError(f"annotator {a.name!r}: density_ratio needs weak_model")
    if a.type == "rm_ensemble" and not a.members:
        raise ValueError(f"annotator {a.name!r}: rm_ensemble needs members (reward-model folders)")
    from pipeline.annotate.registry import check_options  # the annotator classes know their options

    check_options(a)


def default_models() -> dict[str, ModelEndpoint]:
    return {"default": ModelEndpoint()}
