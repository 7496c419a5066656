"""The generation recipes of the curation config (methods.md S3, S4, S6, S8, S1): which policy
writes on-policy samples, the recipes a run combines, and the mixing report. Every recipe is off
until the config lists it (`data/recipes/*.yaml` are ready-made configs)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from pipeline.config_annotate import AnnotatorSpec

POINTWISE = ("rubric_judge", "flr", "density_ratio", "rm_ensemble")  # scorers that give each sample a number


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyConfig(_Strict):
    """The policy pi_t whose samples the recipes use; its name and iteration go into lineage."""
    model: str = "default"                 # key into `models`
    name: str | None = None                # label in lineage (default: the model's name)
    iteration: int = Field(0, ge=0)        # t of pi_t: DRIFT's iter1, iter2, ... regenerate with the new policy


class SamplingConfig(_Strict):
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: PositiveInt = 256
    seed: int = 0                          # the run seed; each request derives its own from it


class _Recipe(_Strict):
    name: str                              # recorded on every pair the recipe makes; unique per run
    max_inputs: PositiveInt | None = None  # take at most this many inputs (prompts, DSAT turns, documents)

    @field_validator("sampling", mode="before", check_fields=False)
    @classmethod
    def _over_recipe_defaults(cls, value):
        """Sampling keys a config gives override the recipe's own defaults one by one (DRIFT's
        T 0.7 stays when only max_tokens is set)."""
        if isinstance(value, dict):
            return {**cls.model_fields["sampling"].default.model_dump(), **value}
        return value


def _scorer(default_type: str):
    return Field(default_factory=lambda: AnnotatorSpec(name=default_type, type=default_type))


def _samples_differ(recipe):
    if recipe.sampling.temperature == 0:
        raise ValueError(f"recipe {recipe.name!r}: {recipe.n} samples at temperature 0 would all be the same answer; "
                         "set sampling.temperature > 0")
    return recipe


def _only(kind: str, why: str):
    def check(value: AnnotatorSpec) -> AnnotatorSpec:
        if value.type != kind:
            raise ValueError(f"{why}: its scorer must be a {kind} annotator, not {value.type}")
        return value
    return check


def _pointwise(value: AnnotatorSpec) -> AnnotatorSpec:
    if value.type not in POINTWISE:
        raise ValueError(f"scorer {value.name!r} is a {value.type}; ranking samples needs a pointwise scorer "
                         f"({', '.join(POINTWISE)})")
    return value


class BestOfN(_Recipe):
    """Prompts -> N policy samples -> a pointwise scorer -> chosen = best, rejected = worst (S8)."""
    type: Literal["best_of_n"]
    prompts_from: list[Literal["prompts", "conversations", "ugc"]] = ["prompts"]
    n: int = Field(4, ge=2)
    sampling: SamplingConfig = SamplingConfig()
    scorer: AnnotatorSpec = _scorer("rubric_judge")

    _scorer_is_pointwise = field_validator("scorer")(_pointwise)
    _sampled = model_validator(mode="after")(_samples_differ)


class FlrAgreementConfig(_Strict):
    """FLR vs the dissatisfaction classifier on the observed next user turn of real logs."""
    enabled: bool = True
    max_turns: PositiveInt = 40            # labelled (answer, next turn) items scored, first in input order
    max_context_chars: PositiveInt = 2000  # longer request + answer are skipped (CPU cost) and counted


class FlrMining(BestOfN):
    """Best-of-N ranked by follow-up likelihood (S1), plus FLR's agreement with SAT/DSAT labels."""
    type: Literal["flr_mining"]
    prompts_from: list[Literal["prompts", "conversations", "ugc"]] = ["conversations"]
    scorer: AnnotatorSpec = _scorer("flr")
    agreement: FlrAgreementConfig = FlrAgreementConfig()

    _scorer_is_flr = field_validator("scorer")(_only("flr", "flr_mining ranks by follow-up likelihood"))


class Drift(_Recipe):
    """DRIFT (S3): rejected = the real answer that drew dissatisfaction; chosen = what the policy
    writes when shown the conversation, that answer and the feedback; prompt = the conversation
    without the feedback."""
    type: Literal["drift"]
    sampling: SamplingConfig = SamplingConfig(temperature=0.7, top_p=0.9, max_tokens=512)


class WildFeedback(_Recipe):
    """WildFeedback-style (S4): the model states the user's preference from the dissatisfaction
    and follow-ups, a generator answers the conversation given that preference, and each pair
    carries a checklist for judge-based evaluation."""
    type: Literal["wildfeedback"]
    extractor: str | None = None           # key into `models` (default: the policy's)
    generator: str | None = None           # key into `models` (default: the policy's; may be stronger)
    sampling: SamplingConfig = SamplingConfig(temperature=0.7, top_p=0.9, max_tokens=512)
    max_checklist: int = Field(5, ge=1, le=10)


class Pugc(_Recipe):
    """PUGC (S6): a UGC answer -> the reader question it answers (model) -> keep if the content
    can answer it (model) -> N policy samples scored with the content as reference -> best vs worst."""
    type: Literal["pugc"]
    writer: str | None = None              # key into `models` for the question and the check (default: the policy's)
    n: int = Field(4, ge=2)
    sampling: SamplingConfig = SamplingConfig(temperature=0.8, top_p=0.95, max_tokens=256)
    scorer: AnnotatorSpec = _scorer("rubric_judge")  # a rubric judge: it grades against the content as reference
    min_doc_chars: PositiveInt = 200       # shorter answers say too little to grade against
    max_doc_chars: PositiveInt = 4000
    min_doc_score: int = 1                 # community votes an answer needs to count as content
    _sampled = model_validator(mode="after")(_samples_differ)
    _scorer_is_judge = field_validator("scorer")(_only("rubric_judge", "pugc grades answers against the user "
                                                                       "content as a reference text"))


Recipe = Annotated[Union[BestOfN, FlrMining, Drift, WildFeedback, Pugc], Field(discriminator="type")]


class MixingConfig(_Strict):
    """The report on a run's pairs per recipe: cross-family chosen/rejected and separability (S18)."""
    # logistic regression on embeddings, chosen vs rejected: for slices with a model-written side
    # (`generated`; embedding every implicit slice costs ~1 min of CPU per 2,000 pairs), `all` or `off`
    separability: Literal["off", "generated", "all"] = "generated"
    model: str = "all-MiniLM-L6-v2"
    max_auc: float = 0.95                  # above: the slice is separable by surface cues (warned)
    min_pairs: PositiveInt = 20            # smaller slices are not probed
    max_pairs: PositiveInt = 500           # a seeded sample of larger slices
    log_family: str = "log"                # model family of logged replies whose model is unknown
