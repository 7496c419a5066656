"""Small message-list helpers for the prompts recipes send to models."""
from __future__ import annotations


def with_system(messages: list[dict], instruction: str) -> list[dict]:
    """The messages with `instruction` as the system message (after an existing system text)."""
    instruction = instruction.strip()
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def quote(text: str, limit: int = 300) -> str:
    """A text cut for evidence: the first `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "…"
