"""Follow-up likelihood as reward (FLR, arXiv 2409.13948; methods S1). Each utterance of a
versioned follow-up set is scored as the user's next turn after (prompt, response):
r = mean_{f in F+} s_f - mean_{f in F-} s_f, where s_f is the mean log-prob of f's own tokens
(`mean_token`, the default: templates differ in length) or their sum. The role header and
end-of-turn token are never scored. All follow-ups of a response share its context, which
vLLM's prefix cache computes once."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.annotate.base import Annotator, as_rows, row_error, scorable, scores_table
from pipeline.annotate.templates import load_template
from pipeline.models import ModelRunner


@dataclass
class FollowUpLikelihood(Annotator):
    runner: ModelRunner | None = None
    followups: str = "flr_followups"   # bundled set name or a YAML path
    normalize: str = "mean_token"      # mean_token | sum
    tpl: dict = field(init=False)

    def __post_init__(self):
        self.tpl = load_template(self.followups, ("positive", "negative"))
        if not self.tpl["positive"] or not self.tpl["negative"]:
            raise ValueError(f"{self.name}: the follow-up set needs positive and negative utterances")
        if self.normalize not in ("mean_token", "sum"):
            raise ValueError(f"{self.name}: normalize must be mean_token or sum")

    def describe(self) -> dict:
        return {"type": "flr", "model": self.runner.ref.id, "backend": self.runner.kind,
                "followups": self.tpl["version"], "followups_hash": self.tpl["hash"], "normalize": self.normalize,
                "n_positive": len(self.tpl["positive"]), "n_negative": len(self.tpl["negative"])}

    def score(self, items: pa.Table) -> pa.Table:
        return self.timed(self._score, items)

    def _score(self, items: pa.Table) -> pa.Table:
        rows = as_rows(items, "prompt", "response")
        ok, errors = scorable(rows)
        pos, neg = self.tpl["positive"], self.tpl["negative"]
        follow = [*pos, *neg]
        requests = [([*rows[i][0], {"role": "assistant", "content": rows[i][1]}], f, "user")
                    for i in ok for f in follow]
        results = self.runner.logprobs(requests)
        score, evidence = [None] * len(rows), [None] * len(rows)
        for k, i in enumerate(ok):
            got = results[k * len(follow):(k + 1) * len(follow)]
            bad = next((r for r in got if r.error is not None), None)
            if bad is not None:
                errors[i] = row_error(bad)
                continue
            s = np.array([r.value.mean if self.normalize == "mean_token" else r.value.sum for r in got])
            flr_pos, flr_neg = float(s[:len(pos)].mean()), float(s[len(pos):].mean())
            score[i] = flr_pos - flr_neg
            evidence[i] = {"flr_pos": flr_pos, "flr_neg": flr_neg, "followup_scores": s.round(5).tolist()}
        return scores_table(score, evidence, [errors.get(i) for i in range(len(rows))])
