"""Curation config: pydantic models whose defaults are the embedded defaults. A YAML file given
with --config overrides any subset; unknown keys are an error (a typo must not silently do nothing)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from pipeline.config_annotate import AnnotateConfig, ModelEndpoint, check_annotator, default_models
from pipeline.config_recipes import MixingConfig, PolicyConfig, Recipe

# the `signal` of a pair: the implicit miners', the generation recipes' (DRIFT's rewrite of a
# DSAT answer, WildFeedback's preference-conditioned answer, PUGC's reference-graded samples) and
# best-of-N's, named after the scorer that ranked the samples
SIGNALS = ("dsat_sat", "edit", "ugc_votes", "human_pairwise", "ratings", "dsat_rewrite", "dsat_preference", "ugc_reference",
           "rubric_judge", "flr", "density_ratio", "rm_ensemble")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourcesConfig(Strict):
    scrub_pii: bool = True                   # emails, phones, IPs, API keys, card numbers
    max_record_bytes: int = 1_000_000        # larger records are quarantined as oversized
    max_text_chars: int = 100_000            # per message / post / response
    # UltraFeedback's score to pair by: the mean of the per-aspect ratings (fine-grained labels beat
    # the overall score for building pairs: methods.md, Unpacking DPO/PPO) or the critique's overall score
    rated_score: Literal["fine-grained_score", "overall_score"] = "fine-grained_score"
    # rated files are read, parsed and paired this many bytes at a time (memory per block; the
    # unit a resumed streamed run skips)
    rated_block_bytes: int = Field(default=16 << 20, ge=4096)


class ConversationSignalConfig(Strict):
    enabled: bool = True
    rephrase_similarity: float = 0.6         # token-set similarity of a retry to the previous request
    new_topic_similarity: float = 0.15       # below this a cue-less turn is a new topic
    max_chain: int = 3                       # DSAT turns allowed between the rejected and accepted answer
    min_rephrase_tokens: int = 3             # shorter turns ("1.e4", "why?") are never counted as retries
    rephrase_min_sort_similarity: float = 0.85  # and whole-text token_sort_ratio: rules out templated series


class EditSignalConfig(Strict):
    enabled: bool = True
    min_distance: float = 0.05               # below: a typo fix, not a preference
    max_distance: float = 0.8                # above: a rewrite, not an edit


class UgcSignalConfig(Strict):
    enabled: bool = True
    min_score_gap: int = 2                   # vote gap between chosen and rejected answers
    comment_weight: float = 1.0              # votes added per net positive follow-up comment
    min_answer_chars: int = 20
    weight_half_gap: float = 5.0             # pair weight = gap / (gap + this): a gap of 5 votes weighs 0.5


class PairwiseSignalConfig(Strict):
    enabled: bool = True
    min_agreement: float = 0.5               # share of annotators who must agree with the majority


class RatingsSignalConfig(Strict):
    enabled: bool = True
    # best_vs_worst | best_vs_random (Tulu 3: the best vs a seeded random lower-rated one) | all_pairs
    # (every higher/lower pair; filters.min_margin.ratings keeps those above a margin)
    policy: Literal["best_vs_worst", "best_vs_random", "all_pairs"] = "best_vs_worst"
    seed: int = 0                            # best_vs_random's draw


class SignalsConfig(Strict):
    conversations: ConversationSignalConfig = ConversationSignalConfig()
    edits: EditSignalConfig = EditSignalConfig()
    ugc: UgcSignalConfig = UgcSignalConfig()
    pairwise: PairwiseSignalConfig = PairwiseSignalConfig()
    ratings: RatingsSignalConfig = RatingsSignalConfig()


class QualityConfig(Strict):
    min_chars: int = 2
    max_chars: int = 20_000
    min_alnum_ratio: float = 0.2             # mostly symbols / binary garbage


class DedupConfig(Strict):
    exact: bool = True
    semantic: bool = True
    threshold: float = 0.95                  # cosine similarity of prompt embeddings
    model: str = "all-MiniLM-L6-v2"


class FiltersConfig(Strict):
    quality: QualityConfig = QualityConfig()
    # minimum margin per signal, in the signal's unit (see README "Signals")
    min_margin: dict[str, float] = Field(default_factory=lambda: {
        "dsat_sat": 0.0, "edit": 0.05, "ugc_votes": 2.0, "human_pairwise": 0.0, "ratings": 0.0})
    # chosen closer than this to rejected (token edit distance) is no preference: a model rewrite
    # that barely changed the answer it rewrites (DRIFT's guard, methods S3)
    min_side_distance: dict[str, float] = Field(default_factory=lambda: {"dsat_rewrite": 0.05, "dsat_preference": 0.05})
    dedup: DedupConfig = DedupConfig()
    per_prompt_cap: PositiveInt = 4          # most pairs kept per prompt (highest margin first)

    @field_validator("min_margin", "min_side_distance")
    @classmethod
    def _known_signals(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {list(SIGNALS)}")
        return value


class DashboardConfig(Strict):
    enabled: bool = True                     # build WORKSPACE/dashboards/NAME/vN/index.html after each commit


class ScheduleSpec(Strict):
    """A scheduled curate run, served by `prefmill serve` as a Prefect deployment."""
    name: str = Field(min_length=1)          # the deployment's name
    cron: str = Field(min_length=9)          # five-field cron, e.g. "0 2 * * *" (checked by Prefect at serve)
    timezone: str = "UTC"
    dataset: str = Field(min_length=1)
    inputs: list[str] = Field(min_length=1)  # files or glob patterns, expanded when each run starts
    incremental: bool = True                 # read only what the latest version has not seen (pipeline/incremental.py)
    dask_address: str | None = None          # a Dask scheduler (tcp://HOST:8786): its workers compute streamed blocks or mine batches


class CurateConfig(Strict):
    sources: SourcesConfig = SourcesConfig()
    signals: SignalsConfig = SignalsConfig()
    models: dict[str, ModelEndpoint] = Field(default_factory=default_models)  # endpoints the keys below name
    policy: PolicyConfig = PolicyConfig()
    recipes: list[Recipe] = Field(default_factory=list)  # generation recipes; none by default
    filters: FiltersConfig = FiltersConfig()
    annotate: AnnotateConfig = AnnotateConfig()
    mixing: MixingConfig = MixingConfig()
    dashboard: DashboardConfig = DashboardConfig()
    batch_size: PositiveInt = 5_000                  # records per flow task
    schedules: list[ScheduleSpec] = Field(default_factory=list)  # for `prefmill serve`; not part of a run

    @model_validator(mode="after")
    def _known_models(self) -> "CurateConfig":
        for what, names in (("recipe", [r.name for r in self.recipes]), ("schedule", [s.name for s in self.schedules])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what} names must be unique; repeated: {dup}")
        keys = [("policy", self.policy.model)] + [
            (f"recipe {r.name!r}", getattr(r, attr)) for r in self.recipes for attr in ("extractor", "generator", "writer")
            if getattr(r, attr, None) is not None]
        for where, key in keys:
            if key not in self.models:
                raise ValueError(f"{where}: model {key!r} is not in `models` ({', '.join(self.models)})")
        for spec in self.annotate.annotators + [r.scorer for r in self.recipes if hasattr(r, "scorer")]:
            check_annotator(spec, self.models)
        return self

    NOT_RUN: ClassVar[set[str]] = {"schedules"}           # `prefmill serve`'s, not a run's
    NOT_DATA: ClassVar[set[str]] = NOT_RUN | {"dashboard"}  # settings that shape no version's data

    def run_config(self) -> dict:
        """The config a curate run gets and its manifest records: all but the schedules."""
        return self.model_dump(exclude=self.NOT_RUN)

    def digest(self) -> str:
        """The manifest's config_hash: a hash of the settings that shape a version's data, all but
        the schedules and the dashboard. An incremental run builds on a parent with the same hash
        (switching the dashboard on or off does not force a full rebuild), and a rerun with the
        same hash and inputs is the same run."""
        data = self.model_dump(exclude=self.NOT_DATA)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ConfigError(ValueError):
    """The config file is unusable; the message says where and why."""


def load_config(path: str | Path | None) -> CurateConfig:
    if path is None:
        return CurateConfig()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return CurateConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"config {path}: {problems}") from exc
