"""What an incremental run's run-wide filters must respect from the version it builds on (its
parent): the parent's decisions are final, so a new pair never displaces a parent's pair.

- the pairs the parent decided (its lineage): the same pair made again by a new record is not
  decided a second time (the record is accounted as filtered, naming the parent);
- the parent's kept prompts (its prompt index: `prompt_id`, `key` = SHA-256 of the exact-dedup
  key, `pairs` = kept pairs; possibly over several part files, one per version): a new prompt that
  duplicates one of them is dropped in its favour, and a prompt the parent kept gets only the
  per-prompt cap's remaining places.

The parent's files are not loaded: each question is a DuckDB semi-join of the run's few ids
against them, so an increment costs in proportion to what is new. A full run passes an empty
Prior: prompt dedup records the keys it computed (`seen`), so the version's prompt index is
written without normalizing its prompts a second time."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.store.layout import sql_list

PROMPTS = pa.schema([("prompt_id", pa.string()), ("key", pa.string()), ("pairs", pa.int64())])


@dataclass
class Prior:
    version: int | None = None                          # the parent version; None for a full run
    lineage: list[Path] = field(default_factory=list)   # the parent's lineage files
    index: list[Path] = field(default_factory=list)     # the parent's prompt-index parts
    texts: Callable[[pa.Array], pa.Array] | None = None  # parent prompt ids -> their texts (semantic dedup)
    seen: pa.Table | None = None                        # filled by prompt dedup: this run's prompt_id, key
    repeated: pa.Table | None = None                    # filled by select_pairs: records of pairs the parent decided
    asked: tuple[pa.Array | None, pa.Table] | None = None  # the last prompts() lookup's ids (None: all) and answer

    @property
    def where(self) -> str:
        return f"parent version v{self.version}"

    def decided(self, pair_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Which of `pair_ids` the parent decided (kept or not)."""
        if not self.lineage or not len(pair_ids):
            return np.zeros(len(pair_ids), bool)
        found = _scan(f"SELECT DISTINCT pair_id FROM read_parquet({sql_list(self.lineage)}) "
                      "WHERE pair_id IN (SELECT v FROM ids)", ids=pair_ids)
        return pc.is_in(pair_ids, value_set=found["pair_id"]).to_numpy(zero_copy_only=False)

    def prompts(self, prompt_ids=None, keys=None) -> pa.Table:
        """The parent's kept prompts with one of `prompt_ids` or `keys` (all of them when both are
        None), one row each with its kept pairs summed over the index parts."""
        if not self.index:
            return PROMPTS.empty_table()
        if prompt_ids is not None and keys is None and self.asked is not None:
            # the per-prompt cap asks for prompts dedup already looked up: answer from that, no second scan
            before, answer = self.asked
            ids = _plain(prompt_ids)
            if before is None or pc.all(pc.is_in(ids, value_set=before), min_count=0).as_py():
                return answer.filter(pc.is_in(answer["prompt_id"], value_set=ids))
        where = "" if prompt_ids is None and keys is None else \
            "WHERE prompt_id IN (SELECT v FROM ids) OR key IN (SELECT v FROM keys)"
        answer = _scan(f"SELECT prompt_id, any_value(key) AS key, sum(pairs)::BIGINT AS pairs "
                       f"FROM read_parquet({sql_list(self.index)}) {where} GROUP BY prompt_id ORDER BY prompt_id",
                       ids=[] if prompt_ids is None else prompt_ids, keys=[] if keys is None else keys).cast(PROMPTS)
        self.asked = (None if prompt_ids is None and keys is None else
                      _plain([] if prompt_ids is None else prompt_ids), answer)
        return answer


def repeated_rows(prior: Prior, input_ids: pa.Array | pa.ChunkedArray) -> tuple[pa.Table, pa.Array]:
    """Unpaired rows (schemas/unpaired.yaml) for the records of pairs the parent already decided,
    and the position of each row's pair in `input_ids`."""
    ids = _plain(input_ids) if isinstance(input_ids, pa.ChunkedArray) else input_ids
    flat = pc.list_flatten(ids)
    reason = f"pair_exists: its pair is already in the {prior.where}"
    return (pa.table({"record_id": flat, "reason": pa.array(np.full(len(flat), reason, dtype=object), pa.string())}),
            pc.list_parent_indices(ids))


def _plain(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else pa.array(values, pa.string())


def _scan(sql: str, **values) -> pa.Table:
    """`sql` over the parent's files, with each of `values` registered as a one-column table `v`."""
    con = duck.connect()
    try:
        for name, column in values.items():
            con.register(name, pa.table({"v": _plain(column)}))
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def index_part(prior: Prior, kept_prompt_ids: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The run's part of the prompt index: its kept prompts, their keys as prompt dedup computed
    them, and their kept pairs (the parent's parts hold the rest)."""
    seen = prior.seen if prior.seen is not None else pa.table(
        {"prompt_id": pa.array([], pa.string()), "key": pa.array([], pa.string())})
    new = pa.table({"prompt_id": kept_prompt_ids}).group_by("prompt_id", use_threads=False).aggregate(
        [("prompt_id", "count")])
    keys = pc.take(seen["key"], pc.index_in(new["prompt_id"], seen["prompt_id"]))
    return pa.table({"prompt_id": new["prompt_id"], "key": keys, "pairs": new["prompt_id_count"]}, schema=PROMPTS)
