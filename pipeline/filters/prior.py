"""What an incremental run's run-wide filters must respect from the version it builds on (its
parent): the parent's decisions are final, so a new pair never displaces a parent's pair.

- `pair_ids`: every pair the parent decided, kept or not. The same pair made again by a new record
  is not decided a second time (the record is accounted as filtered, naming the parent).
- `prompts`: the parent's kept prompts (`prompt_id`, `key` = SHA-256 of the exact-dedup key,
  `pairs` = kept pairs). A new prompt that duplicates one of them is dropped in its favour, and a
  prompt the parent kept gets only the per-prompt cap's remaining places.

A full run passes an empty Prior too: prompt dedup records the keys it computed (`seen`), so the
version's prompt index is written without normalizing its prompts a second time."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

PROMPTS = pa.schema([("prompt_id", pa.string()), ("key", pa.string()), ("pairs", pa.int64())])


@dataclass
class Prior:
    version: int | None = None                     # the parent version; None for a full run
    pair_ids: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    prompts: pa.Table = field(default_factory=PROMPTS.empty_table)
    texts: Callable[[pa.Array], pa.Array] | None = None  # parent prompt ids -> their texts (semantic dedup)
    seen: pa.Table | None = None                   # filled by prompt dedup: this run's prompt_id, key

    @property
    def where(self) -> str:
        return f"parent version v{self.version}"


def next_index(prior: Prior, kept_prompt_ids: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The prompt index of the version a run commits: the parent's, plus the run's kept prompts
    (their keys as prompt dedup computed them), counts summed."""
    seen = prior.seen if prior.seen is not None else pa.table(
        {"prompt_id": pa.array([], pa.string()), "key": pa.array([], pa.string())})
    new = pa.table({"prompt_id": kept_prompt_ids}).group_by("prompt_id", use_threads=False).aggregate(
        [("prompt_id", "count")])
    keys = pc.take(seen["key"], pc.index_in(new["prompt_id"], seen["prompt_id"]))
    new = pa.table({"prompt_id": new["prompt_id"], "key": keys, "pairs": new["prompt_id_count"]}, schema=PROMPTS)
    both = pa.concat_tables([prior.prompts.cast(PROMPTS), new])
    summed = both.group_by("prompt_id", use_threads=False).aggregate([("key", "first"), ("pairs", "sum")])
    return pa.table({"prompt_id": summed["prompt_id"], "key": summed["key_first"], "pairs": summed["pairs_sum"]},
                    schema=PROMPTS)
