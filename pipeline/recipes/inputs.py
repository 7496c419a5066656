"""What the generation recipes take from a run's input tables: prompts (from prompt files, the
first request of each conversation, or community questions) and dissatisfaction turns (the answer
a user was unhappy with, the conversation before it, and what the user said)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConversationSignalConfig
from pipeline.schema import MESSAGE
from pipeline.signals.common import prefix_messages, strings, user_prompt
from pipeline.signals.conversations import label_turns
from pipeline.signals.ugc import question_text

PROMPTS = pa.schema([("record_id", pa.string()), ("prompt", pa.list_(MESSAGE)), ("source", pa.string())])


def first_requests(conversations: pa.Table) -> pa.Table:
    """Each conversation up to and including its first user turn (a system message stays)."""
    messages = conversations["messages"].combine_chunks()
    if not len(messages):
        return PROMPTS.empty_table()
    roles = messages.flatten().field("role")
    parent = pc.list_parent_indices(messages).to_numpy()
    offsets = messages.offsets.to_numpy()
    user = np.flatnonzero(pc.equal(roles, "user").to_numpy(zero_copy_only=False))
    first = np.full(len(messages), -1)
    first[parent[user][::-1]] = user[::-1]      # the smallest flat index per conversation wins
    rows = np.flatnonzero(first >= 0)
    stop = first[rows] - (offsets[rows] - offsets[0])
    return pa.table({"record_id": conversations["record_id"].combine_chunks().take(pa.array(rows)),
                     "prompt": prefix_messages(messages, rows, stop), "source": strings("conversations", len(rows))},
                    schema=PROMPTS)


def questions(ugc: pa.Table) -> pa.Table:
    q = ugc.filter(pc.equal(ugc["kind"], "question"))
    return pa.table({"record_id": q["record_id"], "prompt": user_prompt(question_text(q["title"], q["text"])),
                     "source": strings("ugc", q.num_rows)}, schema=PROMPTS)


def recipe_prompts(tables: dict[str, pa.Table], kinds: list[str]) -> pa.Table:
    """record_id, prompt, source: the prompts of the named input kinds, in that order."""
    parts = {"prompts": lambda: pa.table({"record_id": tables["prompts"]["record_id"],
                                          "prompt": tables["prompts"]["prompt"],
                                          "source": strings("prompts", tables["prompts"].num_rows)}, schema=PROMPTS),
             "conversations": lambda: first_requests(tables["conversations"]),
             "ugc": lambda: questions(tables["ugc"])}
    return pa.concat_tables([parts[k]() for k in kinds]).combine_chunks()


REACTIONS = pa.schema([("record_id", pa.string()), ("conversation_id", pa.string()), ("turn_index", pa.int64()),
                       ("prompt", pa.list_(MESSAGE)), ("answer", pa.string()), ("feedback", pa.string()),
                       ("followups", pa.list_(pa.string())), ("label", pa.string()), ("category", pa.string()),
                       ("confidence", pa.float64()), ("rule", pa.string())])


def answer_reactions(conversations: pa.Table, cfg: ConversationSignalConfig, labels: tuple[str, ...],
                     followups: int = 0) -> pa.Table:
    """One row per logged answer whose next user turn the dissatisfaction classifier gives one of
    `labels`, when a user request precedes the answer: record_id, conversation_id, turn_index (of
    the reacting turn), prompt (the conversation up to and including the request), answer,
    feedback (the reacting turn), followups (the next user turns, up to `followups`), label,
    category, confidence, rule."""
    if not conversations.num_rows:
        return REACTIONS.empty_table()
    turns, cl, classified = label_turns(conversations, cfg)
    prev_request = turns["prev_request"].to_numpy()
    keep = np.isin(classified["label"].to_numpy(zero_copy_only=False), labels) & (prev_request[cl] >= 0)
    d, lab = cl[keep], classified.filter(pa.array(keep))
    content = turns["content"].combine_chunks()
    conv = turns["conv"].to_numpy()
    tix = turns["turn_index"].to_numpy()
    users = np.flatnonzero(turns["is_user"].to_numpy(zero_copy_only=False))
    pos = np.searchsorted(users, d)
    later = [np.where((pos + j < len(users)) & (conv[users[np.minimum(pos + j, len(users) - 1)]] == conv[d]),
                      users[np.minimum(pos + j, len(users) - 1)], -1) for j in range(1, followups + 1)]
    nxt = np.stack(later, axis=1) if later else np.zeros((len(d), 0), dtype=int)
    counts = np.argmin(np.c_[nxt, np.full(len(d), -1)] >= 0, axis=1)  # the first missing ends the list
    flat = nxt[np.arange(nxt.shape[1]) < counts[:, None]].astype(np.int64)  # row-major: each row's in order
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    rows = pa.array(conv[d], pa.int64())
    return pa.table({
        "record_id": conversations["record_id"].combine_chunks().take(rows),
        "conversation_id": conversations["conversation_id"].combine_chunks().take(rows),
        "turn_index": pa.array(tix[d], pa.int64()),
        "prompt": prefix_messages(conversations["messages"].combine_chunks(), conv[d], tix[prev_request[d]]),
        "answer": content.take(pa.array(turns["prev_answer"].to_numpy()[d], pa.int64())),
        "feedback": content.take(pa.array(d, pa.int64())),
        "followups": pa.ListArray.from_arrays(pa.array(offsets), content.take(pa.array(flat, pa.int64()))),
        "label": lab["label"], "category": lab["category"], "confidence": lab["confidence"], "rule": lab["evidence"],
    }, schema=REACTIONS)


def dsat_turns(conversations: pa.Table, cfg: ConversationSignalConfig, followups: int = 2) -> pa.Table:
    """The answers users were dissatisfied with (`answer_reactions` with label DSAT), the answer
    column named `rejected`."""
    t = answer_reactions(conversations, cfg, ("DSAT",), followups)
    return t.rename_columns(["rejected" if c == "answer" else c for c in t.column_names])
