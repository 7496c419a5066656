"""Prompt records -> `prompts` rows: {"prompt": "text"} or a chat ({"prompt"|"messages"|
"conversations": [...]}) that ends with a user turn. A prompt carries no feedback: it makes
pairs only through a generation recipe (best-of-N, FLR mining)."""
from __future__ import annotations

from .fields import Ctx, RecordError, type_name
from .messages import parse_messages

CHAT_KEYS = {"messages": ("role", "content"), "conversations": ("from", "value"), "prompt": ("role", "content")}


def chat(value, ctx: Ctx) -> list[dict]:
    """The prompt of a record as messages; a chat must end with a user turn."""
    if not isinstance(value, dict):
        raise RecordError("not_an_object", f"expected a JSON object, got {type_name(value)}")
    if isinstance(value.get("prompt"), str):
        return [{"role": "user", "content": ctx.check_text(value["prompt"], "prompt")}]
    for key, (role, content) in CHAT_KEYS.items():
        if key in value:
            messages = parse_messages(ctx, value[key], key, role, content, need_dialogue=False)
            if messages[-1]["role"] != "user":
                raise RecordError("bad_role", f"{key}: the chat ends with a {messages[-1]['role']} turn; "
                                              "a prompt must end with a user turn")
            return messages
    raise RecordError("missing_field", "expected 'prompt' (text or chat), 'messages' or 'conversations'")


def prompt(rec: dict, ctx: Ctx) -> dict:
    return {"prompts": [{"prompt": chat(rec, ctx)}]}


def rated_elsewhere(rec: dict, ctx: Ctx) -> dict:
    raise RecordError("unknown_format", "a rated-candidates record outside a JSONL file: rated candidates are read "
                                        "from JSONL (plain or gzip) files whose first record is one; convert this file")
