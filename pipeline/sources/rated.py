"""Rated candidates, read column-wise: UltraFeedback raw records (`instruction`, `completions:
[{model, response, overall_score, fine-grained_score, annotations}]`) and the generic form
(`prompt` text or chat, `candidates: [{response, score, model?}]`), one per JSONL line (plain or
gzip). A file is rated when its first record has either shape.

Lines are cut with NumPy and parsed by DuckDB's JSON functions in blocks of a few MB, so memory
stays bounded by the block and no Python runs per record. The unit of the ledger here is the
candidate (`FILE:LINE#K`): a candidate without a usable score is quarantined alone with its reason,
and its siblings are still paired; a record that is not a rated record at all is quarantined whole
(`FILE:LINE`)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import zlib
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import duck
from pipeline.config import SourcesConfig
from pipeline.schema import conform, empty as empty_table, from_rows

from . import pii, prompts, readers
from .batch import RECORDS, TABLES, SourceBatch, merge, quarantine_row
from .fields import Ctx, RecordError, type_name
from .rated_sql import BLOCK_SQL, CANDIDATES_SQL, MESSAGES_SHAPE, RECORDS_SQL, SCORE_FIELDS, SHAPE
from .readers import GZIP_MAGIC

BATCH_LINES = 2048         # record batches DuckDB scans in parallel
FORMATS = {"ultrafeedback": ("instruction", "completions"), "candidates": ("prompt", "candidates")}  # prompt, candidates keys


def sniff(path: Path) -> str | None:
    """'ultrafeedback' or 'candidates' when the file's first record has that shape, else None."""
    try:
        with readers.open_stream(Path(path)) as f:
            for raw in f:
                if raw.strip():
                    value = json.loads(raw)
                    break
            else:
                return None
    except (OSError, EOFError, ValueError, zlib.error):
        return None  # the record readers report what is wrong with the file
    return _shape(value) if isinstance(value, dict) else None


class _Hashing(io.RawIOBase):
    """A file read once: its bytes are hashed on their way to the reader (gzip or lines), so the
    manifest's fingerprint costs no second pass over the file."""

    def __init__(self, raw, digest=None, size: int = 0):  # digest, size: of a prefix hashed already
        self.raw, self.digest, self.size = raw, digest or hashlib.sha256(), size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        self.size += n
        return n


def line_blocks(stream, block_bytes: int, first: int = 1) -> Iterator[tuple[int, pa.Array]]:
    """(number of the block's first line, its lines as a binary array), for every block of lines
    of a binary stream whose first line is number `first`. Each block is read straight into a
    fresh buffer after the previous block's unfinished line."""
    carry = b""
    while True:
        buf = bytearray(len(carry) + block_bytes)
        buf[:len(carry)] = carry
        got = stream.readinto(memoryview(buf)[len(carry):])
        if not got:
            break
        end = len(carry) + got
        cut = buf.rfind(b"\n", 0, end) + 1
        carry = bytes(buf[cut:end])
        if cut:
            lines = _split(memoryview(buf)[:cut])
            yield first, lines
            first += len(lines)
    if carry:
        yield first, _split(carry + b"\n")


def _split(block) -> pa.Array:
    """The lines of a block that ends with a newline, zero-copy: each value keeps its newline
    (JSON ignores it; the SQL trims it)."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends),
                                            [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(block)])


def read_rated(path, label: str, cfg: SourcesConfig, score_field: str = "fine-grained_score") -> SourceBatch:
    """Every candidate of a rated file as a `rated` row, or quarantined with its reason; an
    unreadable file is one quarantine row with line 0, as in the record readers."""
    return merge(list(rated_blocks(path, label, cfg, score_field)))


def parse_block(lines: pa.Array, first: int, label: str, source: str, cfg: SourcesConfig,
                score_field: str) -> SourceBatch:
    """A block of lines (numbered from `first`) parsed into rated rows and quarantine rows."""
    params = {"shape": SHAPE, "messages_shape": MESSAGES_SHAPE, "max_chars": cfg.max_text_chars,
              "max_bytes": cfg.max_record_bytes}
    sql = BLOCK_SQL.format(records=RECORDS_SQL.replace("{score_field}", score_field),  # one of SCORE_FIELDS
                           candidates=CANDIDATES_SQL)
    block = pa.table({"line": np.arange(first, first + len(lines), dtype=np.int64), "raw": lines})
    con = duck.connect()
    try:
        con.register("lines", pa.Table.from_batches(block.to_batches(max_chunksize=BATCH_LINES)))
        rows = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    return _block(rows, lambda wanted: {int(n): lines[n - first].as_py() for n in wanted},
                  label, source, cfg, score_field)


def rated_blocks(path, label: str, cfg: SourcesConfig, score_field: str = "fine-grained_score",
                 done: dict[int, int] | None = None, start=None, job=None, executor=None,
                 depth: int = 1) -> Iterator:
    """A rated file as one SourceBatch per block of lines (PII already scrubbed), so a caller can
    work block by block in bounded memory. The last batch carries the file's `inputs` entry (its
    fingerprint and record count) and, when the file could not be read to the end, the
    `unreadable_file` quarantine row; `merge` of all of them is the whole file. `done` maps the
    blocks a resumed caller already has (by index in the file) to their record counts: those are
    read and hashed but not parsed, and yield None. `start` (incremental.Start) reads an appended
    file from where its previous version ended; the `inputs` entry still covers the whole file.

    Blocks are parsed by `executor` (a thread by default), `depth` of them ahead of the caller.
    A `job(index, first, lines)` replaces the parsing (a Dask worker parses and pairs a block in
    one go); its results, which carry their record count as `.records`, are yielded instead."""
    done = done or {}
    if score_field not in SCORE_FIELDS:
        raise ValueError(f"score_field must be one of {SCORE_FIELDS}, got {score_field!r}")
    path, source = Path(path), str(path)
    job = job or (lambda index, first, lines: parse_block(lines, first, label, source, cfg, score_field))

    read, tail = 0, []
    try:
        with path.open("rb") as raw:
            mtime_ns = os.fstat(raw.fileno()).st_mtime_ns
            gz = raw.read(2) == GZIP_MAGIC
            raw.seek(start.offset if start else 0)
            hashing = _Hashing(raw, *((start.digest, start.offset) if start else ()))
            stream = gzip.GzipFile(fileobj=hashing) if gz else io.BufferedReader(hashing)
            numbered = line_blocks(stream, cfg.rated_block_bytes, start.line if start else 1)
            blocks = ((i, first, lines) for i, (first, lines) in enumerate(numbered))
            for i, batch in enumerate(_ahead(blocks, job, executor, depth, skip=done)):
                read += done[i] if batch is None else _records(batch)
                yield batch
        sha256, size = hashing.digest.hexdigest(), hashing.size
    except (OSError, EOFError, zlib.error) as exc:
        suffix = f" (after {read} records were read)" if read else ""
        tail.append(quarantine_row(f"{label}:0", source, 0, "unreadable_file",
                                   f"{source}: {readers.describe(exc)}{suffix}", None))
        sha256, size = _fingerprint_or_none(path)
        mtime_ns = None
    records = pa.table({"record_id": [r["record_id"] for r in tail], "source_file": [source] * len(tail),
                        "line": [0] * len(tail)}, schema=RECORDS)
    yield SourceBatch(tables={name: empty_table(name) for name in TABLES}, quarantine=from_rows("quarantine", tail),
                      records=records, stats={},
                      inputs=[{"path": source, "label": label, "sha256": sha256, "bytes": size,
                               "records": (start.records if start else 0) + read + len(tail),
                               "mtime_ns": mtime_ns}])


def _ahead(blocks: Iterator[tuple], job, executor=None, depth: int = 1, skip=()) -> Iterator:
    """job(*block) for every block, in order, run by `executor` (default: one thread) up to
    `depth` blocks ahead of the caller (DuckDB and Arrow release the GIL). A block whose index is
    in `skip` yields None and is not run. A block read before the stream failed is still handed
    over before the error."""
    pool = executor or ThreadPoolExecutor(1, thread_name_prefix="rated-parse")
    pending: deque = deque()
    try:
        while True:
            try:
                block = next(blocks, None)
            except BaseException:
                while pending:
                    yield _result(pending.popleft())
                raise
            if block is None:
                break
            pending.append(None if block[0] in skip else pool.submit(job, *block))
            while len(pending) > depth:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        if executor is None:
            pool.shutdown(cancel_futures=True)


def _result(future):
    return None if future is None else future.result()


def _records(batch) -> int:
    """Records in a block's result: a SourceBatch, or a job's result (its `.records`)."""
    return batch.records.num_rows if isinstance(batch, SourceBatch) else batch.records


def _fingerprint_or_none(path: Path) -> tuple[str | None, int | None]:
    try:
        return readers.fingerprint(path)
    except OSError:
        return None, None


def _ids(label: str, lines: pa.Array, ks: pa.Array | None = None) -> pa.Array:
    ids = pc.binary_join_element_wise(label, pc.cast(lines, pa.string()), ":")
    return ids if ks is None else pc.binary_join_element_wise(ids, pc.cast(ks, pa.string()), "#")


def _block(rows: pa.Table, raws_of, label: str, source: str, cfg: SourcesConfig, score_field: str) -> SourceBatch:
    """One block's BLOCK_SQL rows as a SourceBatch; `raws_of(lines)` gives the raw lines by number
    (for the rejected candidates, explained in Python)."""
    is_record = pc.equal(rows["k"], 0)
    bad_recs = rows.filter(is_record).select(["line", "raw"])
    cands = rows.filter(pc.invert(is_record))
    bad_cands = cands.filter(cands["error"])
    good = cands.filter(pc.invert(cands["error"]))
    quarantine = []
    bad_lines = [r for r in bad_recs.to_pylist() if r["raw"].strip()]  # a blank line is no record
    for r in bad_lines:
        exc = _explain_record(r["raw"], cfg)
        quarantine.append(quarantine_row(f"{label}:{r['line']}", source, r["line"], exc.kind, exc.message, r["raw"]))
    bad_lines = pa.array([r["line"] for r in bad_lines], pa.int64())
    if bad_cands.num_rows:
        raws = raws_of(set(bad_cands["line"].to_pylist()))
        for c in bad_cands.select(["line", "k", "fmt"]).to_pylist():
            item, exc = _explain_candidate(raws[c["line"]], c["fmt"], c["k"], score_field, cfg)
            quarantine.append(quarantine_row(f"{label}:{c['line']}#{c['k']}", source, c["line"], exc.kind,
                                             exc.message, item))
    ids = _ids(label, good["line"], good["k"])
    rated = pa.table({
        "record_id": ids, "prompt_key": _ids(label, good["line"]), "prompt": good["prompt"], "candidate": good["k"],
        "response": good["response"], "score": good["score"], "model": good["model"], "format": good["fmt"]})
    records = pa.concat_tables([
        pa.table({"record_id": rid, "source_file": pa.repeat(source, len(rid)), "line": lines}, schema=RECORDS)
        for rid, lines in ((ids, good["line"]), (_ids(label, bad_cands["line"], bad_cands["k"]), bad_cands["line"]),
                           (_ids(label, bad_lines), bad_lines))])
    quarantine = from_rows("quarantine", quarantine)
    counts: Counter = Counter()
    if cfg.scrub_pii:
        rated = rated.set_column(rated.schema.get_field_index("response"), "response",
                                 pii.scrub(rated["response"], counts))
        rated = rated.set_column(rated.schema.get_field_index("prompt"), "prompt",
                                 pii.scrub_messages(rated["prompt"], counts, once_per_text=True))
        quarantine = pii.scrub_raw(quarantine, counts)
    tables = {name: empty_table(name) for name in TABLES}
    tables["rated"] = conform("rated", rated)
    stats = {"pii_scrubbed": ({k: 0 for k in pii.KINDS} | dict(counts)) if cfg.scrub_pii else {}, "normalized": {}}
    return SourceBatch(tables=tables, quarantine=quarantine, records=records, inputs=[], stats=stats)


def _explain_record(raw: bytes, cfg: SourcesConfig) -> RecordError:
    """Why the SQL turned a record down, in the record readers' words (runs only on rejected rows)."""
    try:
        value = readers.parse_record(readers.RawRecord(0, raw), cfg.max_record_bytes)
        if not isinstance(value, dict):
            raise RecordError("not_an_object", f"expected a JSON object, got {type_name(value)}")
        fmt = _shape(value)
        if fmt is None:
            keys = ", ".join(sorted(value)[:20])
            raise RecordError("unknown_format", "not a rated record: expected instruction + completions "
                                                f"(UltraFeedback) or prompt + candidates; keys [{keys}]")
        ctx = Ctx("", cfg.max_text_chars)
        if fmt == "ultrafeedback":
            ctx.check_text(value["instruction"], "instruction")
        else:
            prompts.chat({"prompt": value["prompt"]}, ctx)
        key = FORMATS[fmt][1]
        if not isinstance(value[key], list):
            raise RecordError("wrong_type", f"{key}: expected an array, got {type_name(value[key])}")
        if not value[key]:
            raise RecordError("missing_field", f"{key} is empty: no candidate to pair")
    except RecordError as exc:
        return exc.with_traceback(None)  # its frames would hold the caller's block in a reference cycle
    return RecordError("wrong_type", "the record does not fit the rated-record shape")


def _explain_candidate(raw: bytes, fmt: str, k: int, score_field: str, cfg: SourcesConfig) -> tuple[bytes, RecordError]:
    """(the candidate's own JSON, why it cannot be paired)."""
    key = FORMATS[fmt][1]
    item = json.loads(raw)[key][k - 1]
    where = f"{key}[{k}]"
    field = score_field if fmt == "ultrafeedback" else "score"
    ctx = Ctx("", cfg.max_text_chars)
    try:
        if not isinstance(item, dict):
            raise RecordError("wrong_type", f"{where}: expected an object, got {type_name(item)}")
        ctx.text(item, "response", where)
        score = ctx.get(item, field, where)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise RecordError("wrong_type", f"{where}.{field}: expected a number, got {type_name(score)} ({score!r:.40})")
        if not math.isfinite(score):
            raise RecordError("wrong_type", f"{where}.{field}: {score} is not a finite number")
        if item.get("model") is not None and not isinstance(item["model"], str):
            raise RecordError("wrong_type", f"{where}.model: expected a string, got {type_name(item['model'])}")
    except RecordError as exc:
        return json.dumps(item, ensure_ascii=False).encode(), exc.with_traceback(None)
    return json.dumps(item, ensure_ascii=False).encode(), RecordError("wrong_type", f"{where} cannot be read")


def _shape(value: dict) -> str | None:
    return next((name for name, (p, c) in FORMATS.items() if p in value and c in value), None)
