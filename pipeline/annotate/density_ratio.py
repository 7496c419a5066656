"""Customizable density ratio (CDR, Dr.SoW arXiv 2411.02481; methods S11): the log-prob of a
response under a strong model minus under a weak one, over the response's own tokens, skipping
special tokens (never in the continuation) and newline tokens as the reference code does:
r = sum log p_strong(y|x) - sum log p_weak(y|x); per-token variant r / |y|. Optional criteria
(and exemplars) are given to the strong model only, as a system message."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.annotate.base import Annotator, as_rows, row_error, scorable, scores_table
from pipeline.models import ModelRunner


def with_criteria(prompt: list[dict], criteria: str | None) -> list[dict]:
    if not criteria:
        return prompt
    if prompt and prompt[0]["role"] == "system":
        return [{"role": "system", "content": f"{criteria}\n\n{prompt[0]['content']}"}, *prompt[1:]]
    return [{"role": "system", "content": criteria}, *prompt]


def masked_sum(runner: ModelRunner, text: str, logprobs: list[float]) -> tuple[float, int]:
    keep = ~np.array(runner.encoder.newline_mask(text), dtype=bool)
    return float(np.asarray(logprobs)[keep].sum()), int(keep.sum())


@dataclass
class DensityRatio(Annotator):
    strong: ModelRunner | None = None
    weak: ModelRunner | None = None
    criteria: str | None = None
    per_token: bool = False            # score = r / |y| instead of r

    def describe(self) -> dict:
        return {"type": "density_ratio", "strong": self.strong.ref.id, "weak": self.weak.ref.id,
                "backends": [self.strong.kind, self.weak.kind], "criteria": self.criteria,
                "variant": "per_token" if self.per_token else "sum", "skips": "special and newline tokens"}

    def score(self, items: pa.Table) -> pa.Table:
        return self.timed(self._score, items)

    def _score(self, items: pa.Table) -> pa.Table:
        rows = as_rows(items, "prompt", "response")
        ok, errors = scorable(rows)
        strong = self.strong.logprobs([(with_criteria(rows[i][0], self.criteria), rows[i][1]) for i in ok])
        weak = self.weak.logprobs([rows[i] for i in ok])
        score, evidence = [None] * len(rows), [None] * len(rows)
        for i, s, w in zip(ok, strong, weak):
            if s.error is not None or w.error is not None:
                errors[i] = row_error(s if s.error is not None else w)
                continue
            text = rows[i][1]
            s_sum, n = masked_sum(self.strong, text, s.value.token_logprobs)
            w_sum, _ = masked_sum(self.weak, text, w.value.token_logprobs)
            if n == 0:
                errors[i] = "empty_text: the response has only newline tokens"
                continue
            ratio = s_sum - w_sum
            score[i] = ratio / n if self.per_token else ratio
            evidence[i] = {"strong_logprob": s_sum, "weak_logprob": w_sum, "ratio": ratio,
                           "ratio_per_token": ratio / n, "tokens": n}
        return scores_table(score, evidence, [errors.get(i) for i in range(len(rows))])
