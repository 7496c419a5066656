"""Chats -> token ids with the model's own chat template, shared by every backend so all three
see exactly the same tokens.

For scoring, the context is rendered up to the continuation's role header (the generation
prompt for an assistant reply; for a user follow-up, the chat template's own rendering of a user
turn, cut where its content starts) and the continuation is tokenized on its own and appended:
the scored tokens are the continuation's and nothing else: no role header, no end-of-turn or
other special token."""
from __future__ import annotations

from .types import RowError

_SLOT = "\x00prefmill-continuation\x00"  # marks where a user turn's content starts


class ChatEncoder:
    def __init__(self, path, max_model_len: int):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        if not self.tokenizer.chat_template:
            raise ValueError(f"{path}: the tokenizer has no chat template")
        self.max_model_len = max_model_len

    def chat_ids(self, messages: list[dict]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def context_ids(self, messages: list[dict], role: str) -> list[int]:
        """Token ids of a chat followed by the header of a `role` turn, ready for its content."""
        if role == "assistant":
            return self.chat_ids(messages)
        text = self.tokenizer.apply_chat_template([*messages, {"role": role, "content": _SLOT}],
                                                  add_generation_prompt=False, tokenize=False)
        return self.tokenizer(text[:text.index(_SLOT)], add_special_tokens=False)["input_ids"]

    def newline_mask(self, text: str) -> list[bool]:
        """Per continuation token: True for whitespace-only tokens holding a newline (CDR skips them)."""
        return [("\n" in piece and not piece.strip())
                for piece in self.tokenizer.batch_decode([[i] for i in self.continuation_ids(text)])]

    def continuation_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt(self, messages: list[dict]) -> list[int] | RowError:
        """Token ids to generate from, or a RowError if the chat leaves no room to generate."""
        if not messages or messages[-1]["role"] != "user":
            return RowError("bad_role", "a chat to respond to must end with a user turn")
        ids = self.chat_ids(messages)
        if len(ids) >= self.max_model_len:
            return RowError("context_overflow", f"the chat is {len(ids)} tokens; the context window is "
                                                f"{self.max_model_len}, leaving no room to generate")
        return ids

    def scoring(self, context: list[dict], continuation: str,
                role: str = "assistant") -> tuple[list[int], list[int]] | RowError:
        """(context ids, continuation ids) for a `role` turn after `context`: an assistant reply
        follows a user turn, a user follow-up follows an assistant turn."""
        after = "user" if role == "assistant" else "assistant"
        if not context or context[-1]["role"] != after:
            return RowError("bad_role", f"a context to score a {role} turn after must end with a {after} turn")
        ctx, cont = self.context_ids(context, role), self.continuation_ids(continuation)
        if not cont:
            return RowError("empty_text", "the continuation has no tokens")
        if len(ctx) + len(cont) > self.max_model_len:
            return RowError("context_overflow", f"context {len(ctx)} + continuation {len(cont)} tokens exceed "
                                                f"the context window of {self.max_model_len}")
        return ctx, cont
