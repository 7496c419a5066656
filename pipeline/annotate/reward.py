"""RM-ensemble annotator (methods S12, §3.3): M reward models score each response; each member's
rewards are z-normalized over the run (members' raw scales are not comparable), then combined.

* per response: mean, median, mean − λ·std and min of the members' z-scores (Helping-or-Herding:
  the uncertainty-penalized and worst-case aggregates resist over-optimization of one member);
* per pair: Δ_m = z_m(a) − z_m(b); vote = share of members with Δ_m > 0, strength = mean and std
  of Δ_m (Secrets of RLHF II); label flip / ambiguous / keep by the strength mean vs ε.

An item any member cannot score is unscored (null score, the member's error), never 0.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.annotate.base import Annotator, distinct_sides, scores_table, verdict_of, verdicts_table
from pipeline.annotate.reward_models import RewardMember, load_member
from pipeline.models.cache import RequestCache

AGGREGATES = ("mean", "median", "mean_minus_std", "min")


def znorm(raw: np.ndarray) -> np.ndarray:
    """Per member (row): (r − mean) / std over the items it scored (NaN stays NaN). A member whose
    scores are all equal carries no ranking information: its z is 0."""
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # a member that scored nothing
        mean = np.nanmean(raw, axis=1, keepdims=True)
        std = np.nanstd(raw, axis=1, keepdims=True)
    return np.where(std > 0, (raw - mean) / np.where(std > 0, std, 1.0), 0.0 * raw)


def aggregates(z: np.ndarray, lam: float) -> dict[str, np.ndarray]:
    """Per item (column), over members (rows)."""
    mean, std = z.mean(axis=0), z.std(axis=0)
    return {"mean": mean, "median": np.median(z, axis=0), "mean_minus_std": mean - lam * std,
            "min": z.min(axis=0), "std": std}


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass
class RewardEnsemble(Annotator):
    name: str = "rm_ensemble"
    members: list = field(default_factory=list)   # RewardMember objects or their folders
    lam: float = 1.0
    aggregate: str = "mean"                       # mean | median | mean_minus_std | min
    epsilon: float = 0.1                          # |strength_mu| <= epsilon (z units) is ambiguous
    cache: RequestCache | None = None

    def __post_init__(self):
        self.members = [m if isinstance(m, RewardMember) else load_member(m) for m in self.members]
        if not self.members:
            raise ValueError(f"{self.name}: an ensemble needs at least one member")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: member names must be distinct, got {names}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"{self.name}: aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")

    def describe(self) -> dict:
        return {"type": "rm_ensemble", "members": [m.describe() for m in self.members],
                "aggregate": self.aggregate, "lam": self.lam, "epsilon": self.epsilon,
                "normalization": "z per member over the run"}

    def member_scores(self, prompts: list[list[dict]], responses: list[str]):
        """(raw, z) as members × items arrays, and per item the first member error (or None)."""
        raw, errors = [], [None] * len(responses)
        for m in self.members:
            values, errs = m.evaluate(prompts, responses, self.cache)
            raw.append(values)
            errors = [old or (e and _with_member(e, m.name)) for old, e in zip(errors, errs)]
        raw = np.vstack(raw)
        return raw, znorm(raw), errors

    def score(self, items: pa.Table) -> pa.Table:
        return self.timed(self._score, items)

    def _score(self, items: pa.Table) -> pa.Table:
        raw, z, errors = self.member_scores(items["prompt"].to_pylist(), items["response"].to_pylist())
        agg = aggregates(z, self.lam)
        names = [m.name for m in self.members]
        score, evidence = [], []
        for i, err in enumerate(errors):
            score.append(None if err else float(agg[self.aggregate][i]))
            evidence.append({"raw": dict(zip(names, map(_num, raw[:, i]))),
                             "z": dict(zip(names, map(_num, z[:, i]))),
                             **{k: _num(v[i]) for k, v in agg.items()}})
        return scores_table(score, evidence, errors)

    def compare(self, items: pa.Table) -> pa.Table:
        return self.timed(self._compare, items)

    def _compare(self, items: pa.Table) -> pa.Table:
        """All distinct (prompt, response) of the pairs are scored in one run (one z-normalization),
        then each pair gets its members' z differences."""
        flat, a, b = distinct_sides(items)
        _, z, errors = self.member_scores(flat["prompt"].to_pylist(), flat["response"].to_pylist())
        delta = z[:, a] - z[:, b]
        vote, mu, sd = (delta > 0).mean(axis=0), delta.mean(axis=0), delta.std(axis=0)
        names = [m.name for m in self.members]
        p_a, verdict, evidence, error = [], [], [], []
        for j, (i, k) in enumerate(zip(a, b)):
            err = errors[i] or errors[k]
            p_a.append(None if err else float(vote[j]))
            verdict.append(verdict_of(p_a[-1]))
            error.append(err)
            evidence.append(None if err else {
                "vote": float(vote[j]), "strength_mu": float(mu[j]), "strength_sd": float(sd[j]),
                "delta": dict(zip(names, delta[:, j].tolist())), "label": self.label(mu[j])})
        return verdicts_table(p_a, verdict, evidence, error)

    def margins(self, verdicts: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """The mean member margin (strength_mu) is already in z units."""
        mu = np.array([json.loads(e)["strength_mu"] if e else np.nan for e in verdicts["evidence"].to_pylist()],
                      dtype=float)
        return mu, mu

    def label(self, strength_mu: float) -> str:
        """S12: a pair the ensemble clearly reverses is `flip`, one it cannot separate `ambiguous`."""
        return "flip" if strength_mu < -self.epsilon else "ambiguous" if abs(strength_mu) <= self.epsilon else "keep"


def _with_member(error: str, member: str) -> str:
    """'kind: detail' -> 'kind: member: detail' (the kind stays first for grouping)."""
    kind, _, detail = error.partition(": ")
    return f"{kind}: {member}: {detail}"
