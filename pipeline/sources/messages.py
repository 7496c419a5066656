"""Turn lists in any of the known spellings -> messages with roles system|user|assistant."""
from __future__ import annotations

from .fields import Ctx, RecordError, type_name

ROLES = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "chatgpt": "assistant", "assistant": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant",
}


def content_text(ctx: Ctx, value, name: str) -> str:
    """Message content: a string, or a list of parts of which the text parts are joined."""
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type_name(part)
                raise RecordError("wrong_type", f"{name}[{i}]: only text parts are supported, got {kind!r}")
        value = "\n".join(texts)
    return ctx.check_text(value, name, allow_empty=True)


def parse_messages(ctx: Ctx, turns, name: str, role_key: str, content_key: str,
                   need_dialogue: bool) -> list[dict]:
    """Normalize roles, drop empty turns and merge consecutive turns of one role (so turns alternate).
    need_dialogue: a conversation must hold a user and an assistant turn (else bad_role)."""
    if not isinstance(turns, list):
        raise RecordError("wrong_type", f"{name}: expected an array of turns, got {type_name(turns)}")
    messages: list[dict] = []
    for i, turn in enumerate(turns):
        where = f"{name}[{i}]"
        turn = ctx.object(turn, where)
        raw_role = ctx.get(turn, role_key, where)
        if not isinstance(raw_role, str):
            raise RecordError("wrong_type", f"{where}.{role_key}: expected a string, got {type_name(raw_role)}")
        role = ROLES.get(raw_role.strip().lower())
        if role is None:
            raise RecordError("bad_role", f"{where}.{role_key}: unknown role {raw_role!r} "
                                          f"(known: {', '.join(sorted(ROLES))})")
        content = content_text(ctx, ctx.get(turn, content_key, where), f"{where}.{content_key}")
        if not content.strip():
            ctx.counters["empty_turns_dropped"] += 1
            continue
        if messages and messages[-1]["role"] == role:
            ctx.counters["same_role_turns_merged"] += 1
            messages[-1]["content"] += "\n\n" + content
        else:
            messages.append({"role": role, "content": content})
    if not messages:
        raise RecordError("empty_text", f"{name}: all {len(turns)} turns are empty" if turns
                          else f"{name} has no turns")
    if need_dialogue:
        roles = {m["role"] for m in messages}
        missing = [r for r in ("user", "assistant") if r not in roles]
        if missing:
            raise RecordError("bad_role", f"{name}: conversation has no {' and no '.join(missing)} turn "
                                          f"(roles present: {', '.join(sorted(roles))})")
    return messages


def prompt_messages(ctx: Ctx, value, name: str) -> list[dict]:
    """A prompt given as a string (one user turn) or as a message list."""
    if isinstance(value, str):
        return [{"role": "user", "content": ctx.check_text(value, name)}]
    if isinstance(value, list):
        return parse_messages(ctx, value, name, "role", "content", need_dialogue=False)
    raise RecordError("wrong_type", f"{name}: expected a string or a message array, got {type_name(value)}")
