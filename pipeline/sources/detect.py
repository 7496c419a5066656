"""Which record format a parsed JSON object is, from its keys (a file may mix formats)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from . import conversations, edits, judgments, prompts, ugc

_DEPTH = re.compile(r"^rev_depth_\d+$")


@dataclass(frozen=True)
class Format:
    name: str
    table: str
    matches: Callable[[dict], bool]
    normalize: Callable


def _has(*keys: str) -> Callable[[dict], bool]:
    return lambda rec: all(k in rec for k in keys)


# First match wins: the most specific key sets come first.
FORMATS: tuple[Format, ...] = (
    Format("sharegpt", "conversations", _has("conversations"), conversations.sharegpt),
    Format("chat", "conversations", _has("messages"), conversations.chat),
    Format("wildchat", "conversations", _has("conversation"), conversations.wildchat),
    Format("se_post", "ugc", _has("PostTypeId"), ugc.se_post),
    Format("se_comment", "ugc", _has("PostId", "Text"), ugc.se_comment),
    Format("thread", "ugc", _has("question", "answers"), ugc.thread),
    Format("lamp", "edits", _has("preedit", "postedit"), edits.lamp),
    Format("r3", "edits", lambda rec: any(_DEPTH.match(k) for k in rec), edits.r3),
    Format("edit", "edits", _has("original", "edited"), edits.generic),
    Format("pandalm", "judgments", _has("response1", "response2"), judgments.pandalm),
    Format("pairwise", "judgments", _has("response_a", "response_b"), judgments.pairwise),
    Format("lamp_ranking", "judgments", _has("responses", "ranking_best_to_worst"), judgments.lamp_ranking),
    Format("wqrm", "judgments", lambda rec: "annotations" in rec and any(k in rec for k in judgments.WQRM_DRAFTS),
           judgments.wqrm),
    # rated candidates are read column-wise from JSONL files (pipeline/sources/rated.py); met here,
    # inside a JSON document or Parquet file, they are turned down rather than mistaken for prompts
    Format("ultrafeedback", "rated", _has("instruction", "completions"), prompts.rated_elsewhere),
    Format("candidates", "rated", _has("prompt", "candidates"), prompts.rated_elsewhere),
    Format("prompt", "prompts", _has("prompt"), prompts.prompt),  # last: many formats also carry a prompt
)


def detect(rec: dict) -> Format | None:
    return next((fmt for fmt in FORMATS if fmt.matches(rec)), None)
