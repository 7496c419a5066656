"""Conversation logs -> `conversations` rows: ShareGPT, chat `messages`, WildChat-style `conversation`."""
from __future__ import annotations

from .fields import Ctx
from .messages import parse_messages


def _row(ctx: Ctx, rec: dict, id_keys: tuple[str, ...], messages: list[dict]) -> dict:
    conversation_id = ctx.record_id
    for key in id_keys:
        if rec.get(key) is not None:
            conversation_id = ctx.ident(rec, key)
            break
    return {"conversations": [{"conversation_id": conversation_id, "messages": messages}]}


def sharegpt(rec: dict, ctx: Ctx) -> dict:
    messages = parse_messages(ctx, rec["conversations"], "conversations", "from", "value", need_dialogue=True)
    return _row(ctx, rec, ("id",), messages)


def chat(rec: dict, ctx: Ctx) -> dict:
    messages = parse_messages(ctx, rec["messages"], "messages", "role", "content", need_dialogue=True)
    return _row(ctx, rec, ("id", "conversation_id"), messages)


def wildchat(rec: dict, ctx: Ctx) -> dict:
    messages = parse_messages(ctx, rec["conversation"], "conversation", "role", "content", need_dialogue=True)
    return _row(ctx, rec, ("conversation_hash", "conversation_id", "id"), messages)
