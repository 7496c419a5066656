"""Pairwise judge asked in both orders (methods S9; Self-Reference AI Feedback). Each pair is
judged as (A=a, B=b) and as (A=b, B=a). Only a verdict both orders agree on stands; a verdict
that flips with the order is a tie, never a win. The run's flip rate and first-position win
rate are recorded (distilabel judges one fixed order; open-instruct's shuffle had an un-shuffle
bug: peers.md). p_a = mean over the two orders of P(a is better): read from the greedy JSON
verdict as 1 / 0.5 / 0, or (verdict_from: logprobs) from the probabilities of answering "A" vs
"B", which small models give far more signal through than their greedy answer."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.annotate.base import Annotator, as_rows, optional_column, row_error, verdicts_table
from pipeline.annotate.fence import fence, plain
from pipeline.annotate.guided import ask_json, request_text
from pipeline.annotate.judge_rubric import blocks
from pipeline.annotate.templates import load_template
from pipeline.models import ModelRunner

WINNER = {"type": "string", "enum": ["A", "B", "tie"]}
_P_FIRST = {"A": 1.0, "B": 0.0, "tie": 0.5}  # probability that the response shown first is better


@dataclass
class PairwiseJudge(Annotator):
    kind: str = "pairwise"
    runner: ModelRunner | None = None
    template: str = "pairwise_judge"
    principles: str | None = None
    rationale: bool = False            # ask for a short rationale before the verdict
    verdict_from: str = "generate"     # generate (greedy JSON) | logprobs (P("A") vs P("B"))
    retries: int = 2
    max_tokens: int | None = None      # default: 16, or 160 with a rationale
    fenced: bool = True
    tpl: dict = field(init=False)
    counts: dict = field(default_factory=lambda: {"pairs": 0, "both_orders": 0, "flips": 0,
                                                  "decisive_orders": 0, "first_position_wins": 0})

    def __post_init__(self):
        self.tpl = load_template(self.template, ("system", "user"))
        if self.verdict_from not in ("generate", "logprobs"):
            raise ValueError(f"{self.name}: verdict_from must be generate or logprobs")
        self.max_tokens = self.max_tokens or (160 if self.rationale else 16)

    @property
    def schema(self) -> dict:
        props = {"rationale": {"type": "string", "maxLength": 300}} if self.rationale else {}
        props["winner"] = WINNER
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def describe(self) -> dict:
        return {"type": "pairwise_judge", "model": self.runner.ref.id, "backend": self.runner.kind,
                "template": self.tpl["version"], "template_hash": self.tpl["hash"], "orders": ["ab", "ba"],
                "flip_rule": "tie", "temperature": 0.0, "retries": self.retries, "fenced": self.fenced,
                "principles": self.principles, "rationale": self.rationale, "verdict_from": self.verdict_from}

    def stats(self) -> dict:
        c = self.counts
        return {**c, "flip_rate": c["flips"] / c["both_orders"] if c["both_orders"] else None,
                "first_position_win_rate": (c["first_position_wins"] / c["decisive_orders"]
                                            if c["decisive_orders"] else None)}

    def margins(self, verdicts: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Margin = 2 p_a - 1 in [-1, 1] (0: no preference), scaled by its standard deviation
        over the run (not centred: 0 must stay 'no preference')."""
        p = np.array([np.nan if v is None else v for v in verdicts["p_a"].to_pylist()], dtype=float)
        margin = 2 * p - 1
        sd = np.nanstd(margin) if np.isfinite(margin).sum() > 1 else np.nan
        return margin, margin / sd if sd and np.isfinite(sd) else np.where(np.isfinite(margin), 0.0, np.nan)

    def chat(self, prompt: list[dict], first: str, second: str, reference: str | None,
             checklist: list[str] | None = None) -> list[dict]:
        wrap = fence if self.fenced else plain
        user = self.tpl["user"].format(request=wrap("request", request_text(prompt)),
                                       response_a=wrap("response_a", first), response_b=wrap("response_b", second),
                                       **blocks(self.tpl, wrap, reference, self.principles, checklist))
        return [{"role": "system", "content": self.tpl["system"].strip()}, {"role": "user", "content": user}]

    def compare(self, items: pa.Table) -> pa.Table:
        return self.timed(self._compare, items)

    def _compare(self, items: pa.Table) -> pa.Table:
        refs, checklists = optional_column(items, "reference"), optional_column(items, "checklist")
        rows = as_rows(items, "prompt", "response_a", "response_b")
        chats = [c for (p, a, b), ref, cl in zip(rows, refs, checklists)
                 for c in (self.chat(p, a, b, ref, cl), self.chat(p, b, a, ref, cl))]
        first, evidence, errors = (self._by_logprobs if self.verdict_from == "logprobs" else self._by_generation)(chats)
        p_a, verdict, error, out = [], [], [], []
        for k in range(len(rows)):
            ab, ba = first[2 * k], first[2 * k + 1]   # P(shown-first is better) in each order
            ev = {"ab": evidence[2 * k], "ba": evidence[2 * k + 1]}
            out.append(ev)
            self.counts["pairs"] += 1
            for p in (ab, ba):
                if p is not None and p != 0.5:
                    self.counts["decisive_orders"] += 1
                    self.counts["first_position_wins"] += p > 0.5
            if ab is None or ba is None:
                p_a.append(None)
                verdict.append(None)
                error.append(errors[2 * k] or errors[2 * k + 1])
                continue
            x, y = ab, 1.0 - ba                       # P(a is better) from each order
            flip = (x - 0.5) * (y - 0.5) < 0
            self.counts["both_orders"] += 1
            self.counts["flips"] += flip
            p_a.append((x + y) / 2)
            verdict.append("a" if x > 0.5 and y > 0.5 else "b" if x < 0.5 and y < 0.5 else "tie")
            error.append(None)
            ev["flip"] = bool(flip)
        return verdicts_table(p_a, verdict, out, error)

    def _by_generation(self, chats: list) -> tuple[list, list, list]:
        """Greedy JSON verdicts: P(first better) is 1, 0.5 (tie) or 0."""
        answers = ask_json(self.runner, chats, self.schema, self.max_tokens, self.retries)
        return ([None if a.value is None else _P_FIRST[a.value["winner"]] for a in answers],
                [{"verdict": a.value, "raw": a.raw} for a in answers], [a.error for a in answers])

    def _by_logprobs(self, chats: list) -> tuple[list, list, list]:
        """P(first better) = P("A") / (P("A") + P("B")) from the log-probs of the two complete
        verdict answers: never unparsable, and graded rather than all-or-nothing."""
        answers = [json.dumps({"winner": w}, separators=(",", ":")) for w in ("A", "B")]
        results = self.runner.logprobs([(chat, ans) for chat in chats for ans in answers])
        first, evidence, errors = [], [], []
        for k in range(len(chats)):
            ra, rb = results[2 * k], results[2 * k + 1]
            if ra.error is not None or rb.error is not None:
                bad = ra if ra.error is not None else rb
                first.append(None), evidence.append(None), errors.append(row_error(bad))
                continue
            la, lb = ra.value.sum, rb.value.sum
            first.append(float(1 / (1 + np.exp(lb - la))))
            evidence.append({"logprob_A": round(la, 5), "logprob_B": round(lb, 5)})
            errors.append(None)
        return first, evidence, errors
