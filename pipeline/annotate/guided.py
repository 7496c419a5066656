"""Ask a model for JSON under guided decoding, with bounded retries, for the LLM judges.

Attempt 0 is greedy (temperature 0). Output that still does not parse or validate against the
schema (typically cut off at max_tokens) is retried up to `retries` times with twice the token
budget and a little temperature, each attempt a distinct cached request. What never parses is
returned as None with the reason, and the judge records the row as unscored: never 0, never
guessed. A request the model cannot take (longer than its context) is not retried."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import jsonschema

from pipeline.annotate.base import row_error
from pipeline.models import ModelRunner, Sampling


@dataclass
class Answer:
    value: dict | None = None          # the parsed, schema-valid JSON
    raw: list[str] = field(default_factory=list)  # every attempt's text, for lineage
    error: str | None = None           # why value is None


def parse(text: str, schema: dict) -> tuple[dict | None, str | None]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"unparsable: not JSON ({exc.msg} at char {exc.pos})"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return None, f"unparsable: {exc.message}"
    return value, None


def ask_json(runner: ModelRunner, chats: list[list[dict]], schema: dict, max_tokens: int,
             retries: int) -> list[Answer]:
    answers = [Answer() for _ in chats]
    todo = list(range(len(chats)))
    for attempt in range(retries + 1):
        if not todo:
            break
        sampling = Sampling.make(json_schema=schema, max_tokens=max_tokens * (2 if attempt else 1),
                                 temperature=0.0 if attempt == 0 else 0.7, seed=attempt)
        results = runner.generate([chats[i] for i in todo], sampling)
        retry = []
        for i, result in zip(todo, results):
            answer = answers[i]
            if result.error is not None:
                answer.error = row_error(result)
                continue
            text = result.value[0].text
            answer.raw.append(text)
            answer.value, answer.error = parse(text, schema)
            if answer.value is None:
                retry.append(i)
        todo = retry
    return answers


def request_text(messages: list[dict]) -> str:
    """The conversation a response answers, as one text: the last user turn alone, or every
    turn labelled with its role when there is history."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
