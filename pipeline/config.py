"""Curation config: pydantic models whose defaults are the embedded defaults. A YAML file given
with --config overrides any subset; unknown keys are an error (a typo must not silently do nothing)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from pipeline.config_annotate import AnnotateConfig


SIGNALS = ("dsat_sat", "edit", "ugc_votes", "human_pairwise")  # names the miners give their pairs


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourcesConfig(Strict):
    scrub_pii: bool = True                   # emails, phones, IPs, API keys, card numbers
    max_record_bytes: int = 1_000_000        # larger records are quarantined as oversized
    max_text_chars: int = 100_000            # per message / post / response


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


class SignalsConfig(Strict):
    conversations: ConversationSignalConfig = ConversationSignalConfig()
    edits: EditSignalConfig = EditSignalConfig()
    ugc: UgcSignalConfig = UgcSignalConfig()
    pairwise: PairwiseSignalConfig = PairwiseSignalConfig()


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
        "dsat_sat": 0.0, "edit": 0.05, "ugc_votes": 2.0, "human_pairwise": 0.0})
    dedup: DedupConfig = DedupConfig()
    per_prompt_cap: PositiveInt = 4          # most pairs kept per prompt (highest margin first)

    @field_validator("min_margin")
    @classmethod
    def _known_signals(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {list(SIGNALS)}")
        return value


class CurateConfig(Strict):
    sources: SourcesConfig = SourcesConfig()
    signals: SignalsConfig = SignalsConfig()
    filters: FiltersConfig = FiltersConfig()
    annotate: AnnotateConfig = AnnotateConfig()
    batch_size: PositiveInt = 5_000                  # records per flow task

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()


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
