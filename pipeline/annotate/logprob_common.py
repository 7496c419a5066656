"""Shared by the log-prob annotators (FLR, density ratio): which rows can be scored at all."""
from __future__ import annotations


def scorable(rows: list[tuple[list[dict], str]]) -> tuple[list[int], dict[int, str]]:
    """Indexes of rows with a non-empty response, and the reason for each other row."""
    ok = [i for i, (_, r) in enumerate(rows) if r and r.strip()]
    return ok, {i: "empty_text: the response is empty" for i in set(range(len(rows))) - set(ok)}


def row_error(result) -> str:
    return f"{result.error.kind}: {result.error.message}"
