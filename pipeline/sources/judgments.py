"""Human preference judgments -> `judgments` rows (one per annotator and response pair; label 1 = a
better, 2 = b better, 0 = tie): PandaLM, generic pairwise, LAMP expert rankings, WQRM expert rankings.

Rankings expand to every pair of candidates, a before b in the order the record lists them.
A single empty response is kept (a model that answered nothing is a real observation; the quality
filter decides about it); an empty prompt or two empty responses are quarantined."""
from __future__ import annotations

import re
from itertools import combinations

from .fields import Ctx, RecordError, type_name
from .messages import prompt_messages

_LABELS = {"1": 1, "2": 2, "0": 0, "a": 1, "b": 2, "tie": 0}
_ANNOTATOR_KEY = re.compile(r"^annotator(\d+)$")
WQRM_DRAFTS = ("first_draft", "random_cot", "best_cot")
_WQRM_RANK = {"most": 1, "second": 2, "least": 3}


def _label(value, name: str) -> int:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        label = _LABELS.get(str(value).strip().lower())
        if label is not None:
            return label
    raise RecordError("wrong_type", f"{name}: expected 1, 2, 0, 'a', 'b' or 'tie', got {type_name(value)} {value!r}")


def _responses(ctx: Ctx, rec: dict, key_a: str, key_b: str) -> tuple[str, str]:
    a = ctx.text(rec, key_a, allow_empty=True)
    b = ctx.text(rec, key_b, allow_empty=True)
    if not a.strip() and not b.strip():
        raise RecordError("empty_text", f"both {key_a} and {key_b} are empty")
    return a, b


def _rank_label(rank_a: int, rank_b: int) -> int:
    return 0 if rank_a == rank_b else (1 if rank_a < rank_b else 2)


def pandalm(rec: dict, ctx: Ctx) -> dict:
    instruction = ctx.text(rec, "instruction")
    extra = ctx.text(rec, "input", allow_empty=True, default="")
    prompt = [{"role": "user", "content": f"{instruction}\n\n{extra}" if extra.strip() else instruction}]
    a, b = _responses(ctx, rec, "response1", "response2")
    keys = sorted((int(m.group(1)), key) for key in rec if (m := _ANNOTATOR_KEY.match(key)))
    if not keys:
        raise RecordError("missing_field", "no annotatorN label field (annotator1, annotator2, ...)")
    return {"judgments": [{"prompt": prompt, "response_a": a, "response_b": b,
                           "label": _label(ctx.get(rec, key), key), "annotator": key} for _, key in keys]}


def pairwise(rec: dict, ctx: Ctx) -> dict:
    """{prompt, response_a, response_b, label (one or a list), annotator? (one or a list)}"""
    prompt = prompt_messages(ctx, ctx.get(rec, "prompt"), "prompt")
    a, b = _responses(ctx, rec, "response_a", "response_b")
    raw = ctx.get(rec, "label")
    labels = [_label(v, f"label[{i}]") for i, v in enumerate(raw)] if isinstance(raw, list) else [_label(raw, "label")]
    if not labels:
        raise RecordError("missing_field", "label is an empty list")
    annotators = rec.get("annotator")
    if isinstance(annotators, list):
        if len(annotators) != len(labels):
            raise RecordError("wrong_type", f"annotator: {len(annotators)} annotators for {len(labels)} labels")
        annotators = [ctx.ident({"annotator": x}, "annotator", default=None) for x in annotators]
    else:
        annotators = [ctx.ident(rec, "annotator", default=None)] * len(labels)
    return {"judgments": [{"prompt": prompt, "response_a": a, "response_b": b, "label": label, "annotator": who}
                          for label, who in zip(labels, annotators)]}


def lamp_ranking(rec: dict, ctx: Ctx) -> dict:
    prompt = [{"role": "user", "content": ctx.text(rec, "instruction")}]
    texts: dict[str, str] = {}
    for i, response in enumerate(ctx.array(rec, "responses")):
        response = ctx.object(response, f"responses[{i}]")
        texts[ctx.ident(response, "label", f"responses[{i}]")] = ctx.text(response, "text", f"responses[{i}]")
    ranking = ctx.array(rec, "ranking_best_to_worst")
    if sorted(map(str, ranking)) != sorted(texts):
        raise RecordError("missing_field", f"ranking_best_to_worst {ranking!r} does not rank exactly the responses "
                                           f"{sorted(texts)!r}")
    rank = {str(label): position for position, label in enumerate(ranking)}
    annotator = ctx.ident(rec, "annotator", default=None)
    return {"judgments": [{"prompt": prompt, "response_a": texts[x], "response_b": texts[y],
                           "label": _rank_label(rank[x], rank[y]), "annotator": annotator}
                          for x, y in combinations(texts, 2)]}


def _wqrm_prompt(ctx: Ctx, rec: dict) -> str:
    """The writing request from the `instruction` object (plot, voice, word count) and `genre`.
    `instruction.paragraph` is the human reference text, not part of the request."""
    instruction = ctx.get(rec, "instruction")
    if isinstance(instruction, str):
        return ctx.check_text(instruction, "instruction")
    instruction = ctx.object(instruction, "instruction")
    plot = ctx.text(instruction, "plot", "instruction")
    genre = rec.get("genre") if isinstance(rec.get("genre"), str) else None
    words = instruction.get("word_count")
    voice = instruction.get("voice")
    ask = f"Write a {genre} piece" if genre else "Write a piece"
    if isinstance(words, int) and not isinstance(words, bool):
        ask += f" of about {words} words"
    if isinstance(voice, str) and voice.strip():
        ask += f" in the {voice.strip()}"
    return f"{ask}, based on this plot:\n\n{plot}"


def wqrm(rec: dict, ctx: Ctx) -> dict:
    prompt = [{"role": "user", "content": _wqrm_prompt(ctx, rec)}]
    drafts = {}
    for key in WQRM_DRAFTS:
        if key in rec:
            drafts[key] = ctx.text(ctx.object(rec[key], key), "candidate", key)
    if len(drafts) < 2:
        raise RecordError("missing_field", f"need at least two of {', '.join(WQRM_DRAFTS)}; found {sorted(drafts)}")
    rows = []
    for n, annotation in enumerate(ctx.array(rec, "annotations")):
        where = f"annotations[{n}]"
        annotation = ctx.object(annotation, where)
        rank = {}
        for key in drafts:
            verdict = ctx.text(annotation, key, where)
            rank[key] = _WQRM_RANK.get(verdict.strip().split(" ")[0].lower())
            if rank[key] is None:
                raise RecordError("wrong_type", f"{where}.{key}: unknown preference {verdict!r}")
        rows += [{"prompt": prompt, "response_a": drafts[x], "response_b": drafts[y],
                  "label": _rank_label(rank[x], rank[y]), "annotator": f"expert{n + 1}"}
                 for x, y in combinations(drafts, 2)]
    if not rows:
        raise RecordError("missing_field", "annotations is empty")
    return {"judgments": rows}
