"""Streamed curation of rated files (UltraFeedback and the generic prompt + candidates form), in
memory bounded by a block of lines rather than by the input. Used when every input is a rated file
and no generation recipe or model annotator is configured (those need the whole run in memory).

1. Per block of lines (`rated_blocks`): read -> `ratings` pairs -> ids and tie rule -> the per-pair
   filters. The block's candidate pairs, with their decisions so far, spill to Arrow IPC files in the
   version's staging folder; only their keys (ids, prompt, weight, margin) stay in memory.
2. Over the keys of the whole run: the same pair found in two blocks is merged into its first
   occurrence (as `build_pairs` merges within one table), then the run-wide filters (prompt
   dedup, per-prompt cap) run exactly as in the in-memory path.
3. Block by block again: the run-wide decisions join the spilled candidates; `finalize` appends
   to pairs.parquet and lineage.parquet, and the block's ledger rows are joined from its own
   parts (plus the lineage of pairs merged across blocks) and appended to ledger.parquet.

The version holds the same pairs, decisions and ledger as the in-memory path would make.

Resume: the staging folder is the run's own (`run_key`), and each block of phase 1 ends with a
done-marker written atomically after its parts. A run killed before its commit leaves the folder;
the rerun reads the finished blocks' parts instead of computing them, and redoes phases 2 and 3."""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.behind import Behind
from pipeline.columns import as_array, first_content, value_counts
from pipeline.config import CurateConfig
from pipeline.curation import SOURCE_KINDS, disabled, manifest_facts, miner
from pipeline.filters import PER_PAIR, RUN_WIDE, RUN_WIDE_COLUMNS, apply_filters
from pipeline.filters.length_bias import length_bias_of
from pipeline.filters.prior import Prior, index_part, repeated_rows
from pipeline.ledger import ledger_table
from pipeline.mixing import mixing_report
from pipeline.pairs import Candidates, build_pairs, finalize, merge_duplicates
from pipeline.schema import conform, empty, schema
from pipeline.signals.result import SignalResult
from pipeline.sources import merge, rated
from pipeline.sources.batch import RECORDS

SPILL = "parts"   # the staging folder's subfolder for the parts; removed before the commit


def streamable(paths: list, cfg: CurateConfig) -> bool:
    """True when the run can be streamed: only rated files, no recipe, no model annotator."""
    return bool(paths) and not cfg.recipes and not cfg.annotate.annotators and all(rated.sniff(Path(p)) for p in paths)


class StreamedRun:
    """One streamed run writing into `staging` (a commit_version stage folder)."""

    def __init__(self, staging: Path, cfg: CurateConfig, cache_dir: Path | None, prior: Prior | None = None,
                 client=None):
        """A staging folder left by a killed run of the same inputs and config is resumed: the
        blocks it finished (those with a done-marker) are read but not computed again. `prior`:
        what an incremental run must respect from its parent version. `client`: a Dask
        distributed client whose workers compute the blocks."""
        self.staging, self.cfg, self.cache_dir = staging, cfg, cache_dir
        self.client = client
        self.workers = max(1, len(client.scheduler_info()["workers"])) if client is not None else 0
        self.worker_pids: set[int] = set()
        self.prior = prior or Prior()
        self.index: pa.Table | None = None  # this run's part of the version's prompt index (prior.index_part)
        self.parts = staging / SPILL
        for stale in (p for p in staging.iterdir() if p.name != SPILL):  # outputs of a killed write or commit
            stale.unlink()  # (never chmod: it may be a hard link to a parent version's file)
        self.parts.mkdir(exist_ok=True)
        self.finished = {int(m.stem.split("-")[1]): json.loads(m.read_text()) for m in self.parts.glob("done-*.json")}
        self.reused = 0
        self.blocks = 0
        self.keys: list[pa.Table] = []
        self.inputs: list[dict] = []
        self.source_stats: dict[str, Counter] = {}
        self.counts = Counter()
        self.decided: pa.Table | None = None
        self.filter_stats: dict = {}

    # -- 1. per block ------------------------------------------------------------------------------
    def add_file(self, path: Path, label: str, progress: Callable[[str], None] = lambda _: None,
                 start=None) -> None:
        """Read, pair and filter a file block by block; `start` (incremental.Start): only the part
        appended since the parent version. With a Dask client, workers parse, pair and spill the
        blocks (this process reads and hashes the file and ships each block's lines)."""
        first = self.blocks  # blocks are numbered in run order, the same in a resumed run
        done = {b - first: m["counts"]["records"] for b, m in self.finished.items() if m["file"] == label}
        on_dask = {} if self.client is None else {
            "job": partial(block_job, base=first, label=label, source=str(path), cfg=self.cfg, parts=self.parts,
                           cache_dir=self.cache_dir),
            "executor": _DaskSubmit(self.client), "depth": 2 * self.workers}
        for block in rated.rated_blocks(path, label, self.cfg.sources, self.cfg.sources.rated_score, done, start,
                                        **on_dask):
            b = self.blocks
            if block is None:  # finished by the killed run: its keys come from its spilled candidates
                marker = self.finished[b]
                self.reused += 1
                self.keys.append(_keys(self._spilled(b), b))
            else:
                computed = block if isinstance(block, Block) else \
                    compute_block(self.parts, self.cfg, self.cache_dir, b, label, block)
                if isinstance(block, Block):
                    self.worker_pids.add(block.pid)
                self.keys.append(computed.keys)
                marker = computed.marker
            self.counts.update(marker["counts"])
            self.inputs += marker["inputs"]
            for key, value in marker["stats"].items():
                self.source_stats.setdefault(key, Counter()).update(value)
            self.blocks += 1
            progress(f"{label}: {self.counts['records']:,} records read, {self.counts['raw_pairs']:,} raw pairs"
                     + (f" ({self.reused} blocks reused from a killed run)" if self.reused else ""))

    # -- 2. over the run's keys ------------------------------------------------------------------
    def select(self) -> dict:
        """Merge pairs found in several blocks, then run the run-wide filters on the keys."""
        keys = pa.concat_tables(self.keys) if self.keys else _keys(_no_candidates(), 0)
        self.keys = []
        counts = keys.group_by("pair_id", use_threads=False).aggregate([("pair_id", "count")])
        repeated = counts.filter(pc.greater(counts["pair_id_count"], 1))["pair_id"]  # in several blocks
        merged = merge_duplicates(keys)
        del keys  # one copy of the keys at a time (they hold the prompts)
        # a pair the parent version decided is not decided again (filters/prior.py)
        in_parent = self.prior.decided(merged["pair_id"])
        alive = np.flatnonzero(merged["alive"].to_numpy(zero_copy_only=False) & ~in_parent)
        run_wide = merged.select(RUN_WIDE_COLUMNS)
        run_wide = Candidates(run_wide if len(alive) == merged.num_rows else run_wide.take(pa.array(alive)))
        columns = {"block": merged["block"], "row": merged["row"], "input_ids": merged["input_ids"],
                   "spans": pc.is_in(merged["pair_id"], value_set=repeated.combine_chunks()),
                   "in_parent": pa.array(in_parent)}
        self.counts["pairs_in_parent"] = int(in_parent.sum())
        n = merged.num_rows
        del merged
        self.filter_stats = apply_filters(run_wide, self.cfg.filters, self.cache_dir, RUN_WIDE, self.prior)
        for name, passed, reason in run_wide.log:  # null where the filter did not see the pair
            columns[f"passed:{name}"] = _spread(passed, alive, n, pa.bool_())
            columns[f"reason:{name}"] = _spread(reason, alive, n, pa.string()).dictionary_encode()  # few distinct
        self.decided = pa.table(columns)
        return self.filter_stats

    # -- 3. write the version -------------------------------------------------------------------
    def write(self, flow_run_id: str | None) -> dict:
        """Write every table of the version into the staging folder; returns the manifest facts
        (the store adds the ledger summary from ledger.parquet at commit)."""
        funnel = Counter({"raw_pairs": self.counts["raw_pairs"], "unique_pairs": 0,
                          **{f"after_{n}": 0 for n in ("tie_rule", *PER_PAIR, *RUN_WIDE)}})
        sides: list[pa.Table] = []
        spanning = [empty("lineage")]  # lineage of pairs merged across blocks: their records' ledger needs it
        repeats = [empty("unpaired")]   # the same for pairs the parent version already decided
        kept_prompts: list[pa.ChunkedArray] = []
        block_of = self.decided["block"].to_numpy()
        if (np.diff(block_of) < 0).any():  # the keys come in block order; should they not, sort them once
            order = np.argsort(block_of, kind="stable")
            self.decided, block_of = self.decided.take(pa.array(order)), block_of[order]
        bounds = np.searchsorted(block_of, np.arange(self.blocks + 1))  # each block's rows: a slice, no copy
        with _Writer(self.staging / "pairs.parquet", "pairs") as pairs_out, \
                _Writer(self.staging / "lineage.parquet", "lineage") as lineage_out, \
                _Writer(self.staging / "quarantine.parquet", "quarantine") as quarantine_out, \
                _Writer(self.staging / "ledger.parquet", "ledger") as ledger_out, \
                Behind(1, "write-pairs") as pairs_behind, Behind(1, "write-ledger") as ledger_behind:
            # a block is written while the next is built: its pairs and its ledger in two threads

            def append(pairs, lineage, quarantine) -> None:
                pairs_out.write(pairs)
                lineage_out.write(lineage)
                quarantine_out.write(quarantine)

            for b in range(self.blocks):
                mine = self.decided.slice(bounds[b], bounds[b + 1] - bounds[b])
                in_parent = as_array(mine["in_parent"])
                repeated = self._in_parent(mine.filter(in_parent))
                mine = mine.filter(pc.invert(in_parent))
                cands = self._final_candidates(b, mine)
                pairs, lineage = finalize(cands)
                kept_prompts.append(pairs["prompt_id"])
                spans = as_array(mine["spans"])
                spanning.append(lineage.filter(spans))
                repeats.append(_unpaired(repeated.filter(repeated["spans"])))
                quarantine = self._part("quarantine", b, lambda: empty("quarantine"))
                ledger_inputs = (self._part("records", b, RECORDS.empty_table), quarantine,
                                 pa.concat_tables([lineage.filter(pc.invert(spans)), *spanning]),
                                 pa.concat_tables([self._part("unpaired", b, lambda: empty("unpaired")),
                                                   _unpaired(repeated.filter(pc.invert(repeated["spans"]))),
                                                   *repeats]))
                pairs_behind.submit(append, pairs, lineage, quarantine)
                ledger_behind.submit(lambda inputs: ledger_out.write(ledger_table(*inputs)), ledger_inputs)
                funnel["unique_pairs"] += cands.table.num_rows
                for name, passed, _ in cands.log:
                    funnel[f"after_{name}"] += int(pc.sum(pc.fill_null(passed, False)).as_py() or 0)
                sides.append(pa.table({"chosen": pc.utf8_length(first_content(pairs["chosen"])),
                                       "rejected": pc.utf8_length(first_content(pairs["rejected"])),
                                       "margin": pairs["margin"], "signal": pairs["signal"]}))
        self.decided = None
        self.index = index_part(self.prior, pa.chunked_array([c for a in kept_prompts for c in a.chunks], pa.string()))
        pq.write_table(empty("signals"), self.staging / "signals.parquet", compression="zstd")
        stats = self._reports(pa.concat_tables(sides) if sides else None)
        _remove_parts(self.parts)
        counts = {"records": self.counts["records"],
                  **{f"rows_{k}": 0 for k in SOURCE_KINDS}, "rows_rated": self.counts["rows_rated"],
                  "signal_turns": 0, **dict(funnel)}
        source_stats = {k: dict(v) for k, v in self.source_stats.items()}
        if self.reused:  # provenance: this version was finished by a run that resumed a killed one
            stats["resume"] = {"blocks": self.blocks, "reused": self.reused}
        if self.prior.version is not None:
            counts["pairs_in_parent"] = self.counts["pairs_in_parent"]
        if self.client is not None:  # provenance: where the blocks were computed
            stats["dask"] = {"scheduler": self.client.scheduler.address, "workers": self.workers,
                             "blocks": self.blocks - self.reused, "worker_pids": sorted(self.worker_pids)}
        return manifest_facts(self.cfg, flow_run_id, self.inputs, counts, {**stats, "sources": source_stats})

    def _final_candidates(self, b: int, mine: pa.Table) -> Candidates:
        """Block b's spilled candidates without the pairs merged into an earlier block, with the
        merged input ids and the run-wide decisions appended to their log."""
        spilled = self._spilled(b)
        rows = as_array(mine["row"])
        if len(rows) != spilled.table.num_rows or not np.array_equal(rows.to_numpy(), np.arange(len(rows))):
            spilled = Candidates(spilled.table.take(rows), [(n, p.take(rows), r.take(rows)) for n, p, r in spilled.log])
        # else every spilled row stays, in order (no pair merged into an earlier block): no copy of the texts
        table = spilled.table
        table = table.set_column(table.schema.get_field_index("input_ids"), "input_ids", mine["input_ids"])
        log = list(spilled.log)
        log += [(name, as_array(mine[f"passed:{name}"]), as_array(mine[f"reason:{name}"]).cast(pa.string()))
                for name in RUN_WIDE if f"passed:{name}" in mine.column_names]
        return Candidates(table, log)

    def _in_parent(self, rows: pa.Table) -> pa.Table:
        """Unpaired rows (plus `spans`) for the records of pairs the parent version already decided:
        they are accounted as filtered, naming the parent."""
        table, at = repeated_rows(self.prior, rows["input_ids"])
        return table.append_column("spans", as_array(rows["spans"]).take(at))

    def _spilled(self, b: int) -> Candidates:
        """Block b's candidate pairs with their per-pair decisions, as phase 1 spilled them."""
        path = self.parts / f"cands-{b:06d}.arrow"
        return _unspill(_read_part(path)) if path.exists() else _no_candidates()

    def _part(self, name: str, block: int, none: Callable[[], pa.Table]) -> pa.Table:
        """A block's spilled part (`none()` when the block had no such rows)."""
        path = self.parts / f"{name}-{block:06d}.arrow"
        return _read_part(path) if path.exists() else none()

    def _reports(self, sides: pa.Table | None) -> dict:
        """The same reports as the in-memory path, from the kept pairs' lengths and lineage."""
        lineage = pq.read_table(self.staging / "lineage.parquet", filters=pc.field("kept"),
                                columns=["recipe", "signal", "chosen_origin", "rejected_origin", "generator"])
        pairs_file = ds.dataset(self.staging / "pairs.parquet")
        if sides is None:
            sides = pa.table({"chosen": pa.array([], pa.int64()), "rejected": pa.array([], pa.int64()),
                              "margin": pa.array([], pa.float64()), "signal": pa.array([], pa.string())})
        chars = {s: sides[s].to_numpy(zero_copy_only=False).astype(float) for s in ("chosen", "rejected")}
        return {"length_bias": length_bias_of(chars["chosen"], chars["rejected"], sides["margin"], sides["signal"]),
                **self.filter_stats, "pairs_by_signal": value_counts(sides["signal"]),
                "mixing": mixing_report(lineage, self.cfg.mixing, self.cache_dir,
                                        lambda rows: pairs_file.take(pa.array(rows), columns=["chosen", "rejected"]))}


@dataclass
class Block:
    """What computing a block leaves in memory: its keys and its done-marker; `pid` says which
    process computed it."""
    keys: pa.Table
    marker: dict
    pid: int

    @property
    def records(self) -> int:
        return self.marker["counts"]["records"]


def compute_block(parts: Path, cfg: CurateConfig, cache_dir: Path | None, b: int, label: str, block) -> Block:
    """Pair and filter block b, spill its parts; the done-marker, written last and atomically, is
    what a resumed run trusts."""
    batch = merge([block])  # conformed tables and the block's source stats
    table = batch.tables["rated"]
    mine = miner("rated", cfg)
    if not table.num_rows:
        mined = SignalResult()
    else:
        mined = mine(table) if mine else disabled("rated", table, cfg)
    cands = build_pairs(mined.pairs)
    apply_filters(cands, cfg.filters, cache_dir, PER_PAIR)
    for name, part in (("records", batch.records), ("quarantine", batch.quarantine),
                       ("unpaired", mined.unpaired), ("cands", _spill_table(cands))):
        if part.num_rows:
            _write_part(part, parts / f"{name}-{b:06d}.arrow")
    marker = {"file": label, "inputs": batch.inputs, "stats": batch.stats,
              "counts": {"records": batch.records.num_rows, "rows_rated": table.num_rows,
                         "raw_pairs": mined.pairs.num_rows}}
    tmp = parts / f"done-{b:06d}.json.tmp"
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, parts / f"done-{b:06d}.json")
    return Block(_keys(cands, b), marker, os.getpid())


def block_job(index: int, first: int, lines: pa.Array, *, base: int, label: str, source: str,
              cfg: CurateConfig, parts: Path, cache_dir: Path | None) -> Block:
    """Parse, pair, filter and spill the file's block `index` (run block base + index): what a Dask
    worker runs. The staging folder must be at the same path on every worker."""
    batch = rated.parse_block(lines, first, label, source, cfg.sources, cfg.sources.rated_score)
    return compute_block(parts, cfg, cache_dir, base + index, label, batch)


class _DaskSubmit:
    """A Dask client as the executor `rated_blocks` submits jobs to (impure: never deduplicated)."""

    def __init__(self, client):
        self.client = client

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)


class _Writer:
    """Appends tables to one Parquet file with its contract's schema (written empty if none)."""

    def __init__(self, path: Path, name: str):
        self.name = name
        self.writer = pq.ParquetWriter(path, schema(name), compression="zstd")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(conform(self.name, table))

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()


def _write_part(table: pa.Table, path: Path) -> None:
    """A spilled part as an uncompressed Arrow IPC file: writing it is a copy of its buffers, and it
    is read back memory-mapped (Parquet with LZ4 cost 4x more CPU both ways, for a file that lives
    only until the commit)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_part(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _spill_table(cands: Candidates) -> pa.Table:
    """The candidates with their decision log as `passed:NAME` / `reason:NAME` columns."""
    table = cands.table
    for name, passed, reason in cands.log:
        table = table.append_column(f"passed:{name}", passed).append_column(f"reason:{name}", reason)
    return table


def _unspill(table: pa.Table) -> Candidates:
    names = [c.split(":", 1)[1] for c in table.column_names if c.startswith("passed:")]
    log = [(n, as_array(table[f"passed:{n}"]), as_array(table[f"reason:{n}"])) for n in names]
    return Candidates(table.drop_columns([f"{k}:{n}" for n in names for k in ("passed", "reason")]), log)


def _spread(values: pa.Array, at: np.ndarray, n: int, type_: pa.DataType) -> pa.Array:
    """values placed at positions `at` of an n-long column, null elsewhere."""
    out = np.full(n, None, dtype=object)
    out[at] = as_array(values).to_numpy(zero_copy_only=False)
    return pa.array(out, type_)


def _keys(cands: Candidates, b: int) -> pa.Table:
    """What the run-wide phase keeps of block b's candidates: ids, prompt, weight, margin, their
    place (block, row) and whether the per-pair filters left them alive."""
    n = cands.table.num_rows
    return cands.table.select(["input_ids", *RUN_WIDE_COLUMNS]).append_column(
        "block", pa.array(np.full(n, b, np.int32))).append_column(
        "row", pa.array(np.arange(n, dtype=np.int64))).append_column("alive", pa.array(cands.kept))


def _unpaired(rows: pa.Table) -> pa.Table:
    return conform("unpaired", rows.drop_columns(["spans"]))


def _no_candidates() -> Candidates:
    return build_pairs(empty("raw_pairs"))


def _remove_parts(parts: Path) -> None:
    """The done-markers go first: a kill while the parts are removed must not leave a marker
    whose parts are gone (the resumed run would trust it)."""
    for marker in parts.glob("done-*.json"):
        marker.unlink()
    shutil.rmtree(parts, ignore_errors=True)
