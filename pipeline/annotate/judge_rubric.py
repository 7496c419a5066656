"""Pointwise rubric judge (UltraFeedback style, methods S9): a 1-5 rating per aspect
(instruction following, truthfulness, honesty, helpfulness), a rationale and an overall rating,
as JSON under guided decoding at temperature 0, from a versioned, hashed template. The score is
the overall rating (or the mean of the aspects); unparsable output is unscored."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.annotate.base import Annotator, as_rows, optional_column, scorable, scores_table
from pipeline.annotate.fence import fence, plain
from pipeline.annotate.guided import ask_json, request_text
from pipeline.annotate.templates import load_template
from pipeline.models import ModelRunner

RATING = {"type": "integer", "enum": [1, 2, 3, 4, 5]}


def blocks(tpl: dict, wrap, reference: str | None, principles: str | None,
           checklist: list[str] | None = None) -> dict:
    """The optional reference, principles and per-item checklist paragraphs of a judge prompt;
    the checklist's criteria are numbered and fenced (they come from user text)."""
    if checklist and "checklist_block" not in tpl:
        raise ValueError(f"template {tpl['version']} has no checklist_block for the items' checklist")
    criteria = "\n".join(f"{k}. {c}" for k, c in enumerate(checklist or [], 1))
    return {"reference_block": tpl["reference_block"].format(reference=wrap("reference", reference))
            if reference else "",
            "principles_block": tpl["principles_block"].format(principles=principles) if principles else "",
            "checklist_block": tpl["checklist_block"].format(checklist=wrap("checklist", criteria))
            if checklist else ""}


@dataclass
class RubricJudge(Annotator):
    runner: ModelRunner | None = None
    template: str = "rubric_judge"
    aspects: tuple[str, ...] = ()      # default: every aspect in the template
    score_from: str = "overall"        # overall | aspects_mean
    principles: str | None = None
    retries: int = 2
    max_tokens: int = 200
    rationale_chars: int = 300
    fenced: bool = True
    tpl: dict = field(init=False)

    def __post_init__(self):
        self.tpl = load_template(self.template, ("system", "user", "aspects"))
        unknown = set(self.aspects) - set(self.tpl["aspects"])
        if unknown:
            raise ValueError(f"{self.name}: unknown aspect(s) {sorted(unknown)}; the template has "
                             f"{sorted(self.tpl['aspects'])}")
        self.aspects = tuple(self.aspects) or tuple(self.tpl["aspects"])
        if self.score_from not in ("overall", "aspects_mean"):
            raise ValueError(f"{self.name}: score_from must be overall or aspects_mean")

    @property
    def schema(self) -> dict:
        props = {a: RATING for a in self.aspects}
        props["rationale"] = {"type": "string", "maxLength": self.rationale_chars}
        props["overall"] = RATING
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def describe(self) -> dict:
        return {"type": "rubric_judge", "model": self.runner.ref.id, "backend": self.runner.kind,
                "template": self.tpl["version"], "template_hash": self.tpl["hash"], "aspects": list(self.aspects),
                "score_from": self.score_from, "temperature": 0.0, "retries": self.retries,
                "fenced": self.fenced, "principles": self.principles}

    def chat(self, prompt: list[dict], response: str, reference: str | None,
             checklist: list[str] | None = None) -> list[dict]:
        wrap = fence if self.fenced else plain
        user = self.tpl["user"].format(
            request=wrap("request", request_text(prompt)), response=wrap("response", response),
            aspect_lines="\n".join(f"- {a}: {self.tpl['aspects'][a]}" for a in self.aspects),
            **blocks(self.tpl, wrap, reference, self.principles, checklist))
        return [{"role": "system", "content": self.tpl["system"].strip()}, {"role": "user", "content": user}]

    def score(self, items: pa.Table) -> pa.Table:
        return self.timed(self._score, items)

    def _score(self, items: pa.Table) -> pa.Table:
        refs, checklists = optional_column(items, "reference"), optional_column(items, "checklist")
        rows = as_rows(items, "prompt", "response")
        ask, errors = scorable(rows)
        score, evidence = [None] * len(rows), [None] * len(rows)
        answers = ask_json(self.runner, [self.chat(*rows[i], refs[i], checklists[i]) for i in ask], self.schema,
                           self.max_tokens, self.retries)
        for i, ans in zip(ask, answers):
            evidence[i] = {"raw": ans.raw, "attempts": len(ans.raw)}
            if ans.value is None:
                errors[i] = ans.error
                continue
            ratings = {a: ans.value[a] for a in self.aspects}
            evidence[i].update(ratings=ratings, overall=ans.value["overall"], rationale=ans.value["rationale"])
            score[i] = float(ans.value["overall"] if self.score_from == "overall" else np.mean(list(ratings.values())))
        return scores_table(score, evidence, [errors.get(i) for i in range(len(rows))])
