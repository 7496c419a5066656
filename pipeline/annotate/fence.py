"""Untrusted text (user prompts, UGC, model responses) goes into judge prompts fenced as data.

Each text sits between an opening and a closing marker that names it; marker look-alikes inside
the text are defanged, so a response cannot close its own fence and speak as the judge's
instructions. The judge's system prompt says that fenced text is data to evaluate, never
instructions to follow (see templates/*.yaml)."""
from __future__ import annotations

import re

OPEN, CLOSE = "<<<", ">>>"
_MARKERS = re.compile(r"<{3,}|>{3,}")


def defang(text: str) -> str:
    """Break any run of three or more angle brackets so it cannot act as a fence marker."""
    return _MARKERS.sub(lambda m: " ".join(m.group(0)), text)


def fence(label: str, text: str) -> str:
    tag = label.upper().replace(" ", "_")
    return f"{OPEN}{tag}{CLOSE}\n{defang(text)}\n{OPEN}END {tag}{CLOSE}"


def plain(label: str, text: str) -> str:
    """The unfenced form, for measuring what fencing buys (eval only): a heading and the text."""
    return f"{label.replace('_', ' ').title()}:\n{text}"
