"""What the generation recipes take from a run's input tables: prompts (from prompt files, the
first request of each conversation, or community questions) and dissatisfaction turns (the answer
a user was unhappy with, the conversation before it, and what the user said)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConversationSignalConfig
from pipeline.signals.common import prefix_messages, strings, user_prompt
from pipeline.signals.conversations import label_turns
from pipeline.signals.ugc import question_text

PROMPTS = pa.schema([("record_id", pa.string()), ("prompt", pa.list_(pa.struct([("role", pa.string()),
                                                                                ("content", pa.string())]))),
                     ("source", pa.string())])


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


def dsat_turns(conversations: pa.Table, cfg: ConversationSignalConfig, followups: int = 2) -> pa.Table:
    """One row per user turn the dissatisfaction classifier labels DSAT that answers an assistant
    turn with a user request before it: record_id, conversation_id, turn_index (of the DSAT turn),
    prompt (the conversation up to and including the request), rejected (the answer), feedback
    (the DSAT turn), followups (the next user turns of the conversation, up to `followups`),
    category, confidence, rule."""
    if not conversations.num_rows:
        return _dsat_empty()
    turns, cl, labels = label_turns(conversations, cfg)
    is_dsat = pc.equal(labels["label"], "DSAT").to_numpy(zero_copy_only=False)
    prev_request = turns["prev_request"].to_numpy()
    keep = is_dsat & (prev_request[cl] >= 0)
    d, lab = cl[keep], labels.filter(pa.array(keep))
    if not len(d):
        return _dsat_empty()
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
    rid = conversations["record_id"].combine_chunks()
    cid = conversations["conversation_id"].combine_chunks()
    return pa.table({
        "record_id": rid.take(pa.array(conv[d])), "conversation_id": cid.take(pa.array(conv[d])),
        "turn_index": pa.array(tix[d]),
        "prompt": prefix_messages(conversations["messages"].combine_chunks(), conv[d], tix[prev_request[d]]),
        "rejected": content.take(pa.array(turns["prev_answer"].to_numpy()[d])),
        "feedback": content.take(pa.array(d)),
        "followups": pa.ListArray.from_arrays(pa.array(offsets), content.take(pa.array(flat, pa.int64()))),
        "category": lab["category"], "confidence": lab["confidence"], "rule": lab["evidence"],
    })


def _dsat_empty() -> pa.Table:
    return pa.table({"record_id": pa.array([], pa.string()), "conversation_id": pa.array([], pa.string()),
                     "turn_index": pa.array([], pa.int64()), "prompt": pa.array([], PROMPTS.field("prompt").type),
                     "rejected": pa.array([], pa.string()), "feedback": pa.array([], pa.string()),
                     "followups": pa.array([], pa.list_(pa.string())), "category": pa.array([], pa.string()),
                     "confidence": pa.array([], pa.float64()), "rule": pa.array([], pa.string())})
