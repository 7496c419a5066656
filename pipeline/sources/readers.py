"""Bytes -> raw records. Containers: JSONL, a JSON document (an array of records, or one or more
objects), either of them gzip-compressed (found by magic bytes), and Parquet.

JSONL is streamed line by line (through gzip too). A JSON document is read whole, then split into
its elements with the decoder's positions so each keeps its own raw text. Errors that lose the
whole file raise `UnreadableFile`; errors confined to one record travel with that record."""
from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.hashing import file_sha256

from .fields import RecordError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
BOM = b"\xef\xbb\xbf"
NOT_PARSED = object()
_WS = " \t\r\n"


class UnreadableFile(Exception):
    """The file (or the rest of it) cannot be read at all."""


@dataclass
class RawRecord:
    line: int                     # 1-based JSONL line, array element, or Parquet row
    raw: bytes                    # the record's bytes (Parquet: its JSON rendering)
    value: object = NOT_PARSED    # already-parsed value (JSON documents, Parquet)
    error: RecordError | None = None


fingerprint = file_sha256  # (sha256, bytes) of an input file


def iter_records(path: Path) -> Iterator[RawRecord]:
    try:
        if _magic(path) == PARQUET_MAGIC:
            try:
                yield from _parquet(path)
            except (pa.ArrowException, ValueError) as exc:
                raise UnreadableFile(f"corrupt Parquet: {exc}") from exc
            return
        container = _sniff(path)
        with open_stream(path) as stream:
            yield from (_jsonl(stream) if container == "jsonl" else _document(stream.read(), container))
    except (OSError, EOFError, zlib.error) as exc:   # missing, permission, corrupt or truncated gzip
        raise UnreadableFile(describe(exc)) from exc


def raw_at(path: Path, lines: set[int]) -> dict[int, bytes]:
    """The raw bytes of the given records (to quarantine records found bad after reading)."""
    found: dict[int, bytes] = {}
    try:
        for rec in iter_records(path):
            if rec.line in lines:
                found[rec.line] = rec.raw
                if len(found) == len(lines):
                    break
    except UnreadableFile:
        pass
    return found


def _magic(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4)


def open_stream(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it is gzip (found by its magic bytes)."""
    return gzip.open(path, "rb") if _magic(path)[:2] == GZIP_MAGIC else open(path, "rb")


def _sniff(path: Path) -> str:
    """'jsonl', 'array' or 'values' (JSON values spread over lines, e.g. one pretty-printed object),
    from the first bytes and the extension (the name of a gzip file without its .gz)."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    with open_stream(path) as stream:
        head = stream.read(1 << 16).removeprefix(BOM).lstrip()
        while head.isspace() and (more := stream.read(1 << 16)):
            head = more.lstrip()
        if head[:1] == b"[":
            return "array"
        if head[:1] != b"{" or ext != ".json":
            return "jsonl"
        first = head.split(b"\n", 1)[0] if b"\n" in head else head + stream.readline()
    try:
        json.loads(first)
    except ValueError:
        return "values"
    return "jsonl"


def _jsonl(stream) -> Iterator[RawRecord]:
    for number, line in enumerate(stream, 1):
        if number == 1:
            line = line.removeprefix(BOM)
        line = line.strip()
        if line:
            yield RawRecord(number, line)


def _document(data: bytes, container: str) -> Iterator[RawRecord]:
    data = data.removeprefix(BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        yield RawRecord(0, data[:65536], error=RecordError(
            "bad_encoding", f"JSON document is not valid UTF-8: byte {data[exc.start:exc.start + 1]!r} "
                            f"at offset {exc.start} (line {line}); the document cannot be split into records"))
        return
    yield from (_array(text) if container == "array" else _values(text))


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _array(text: str) -> Iterator[RawRecord]:
    decoder = json.JSONDecoder()
    i = _skip_ws(text, _skip_ws(text, 0) + 1)          # past '['
    if text[i:i + 1] == "]":
        return
    n = 0
    while True:
        n += 1
        record, end = _decode_one(decoder, text, i, n, f"array element {n}: ", "the rest of the array is not read")
        yield record
        if end is None:
            return
        i = _skip_ws(text, end)
        if text[i:i + 1] == ",":
            i = _skip_ws(text, i + 1)
        elif text[i:i + 1] == "]":
            return
        else:
            yield _broken(text, i, n + 1, f"expected ',' or ']' after array element {n} (character {i}); "
                                          "the rest of the array is not read")
            return


def _values(text: str) -> Iterator[RawRecord]:
    """Concatenated JSON documents, numbered by position (1, 2, ...) like array elements: two
    documents may share a text line, and record ids must never collide."""
    decoder = json.JSONDecoder()
    i, n = _skip_ws(text, 0), 0
    while i < len(text):
        n += 1
        record, end = _decode_one(decoder, text, i, n, "", "the rest of the document is not read")
        yield record
        if end is None:
            return
        i = _skip_ws(text, end)


def _decode_one(decoder: json.JSONDecoder, text: str, i: int, n: int, where: str,
                consequence: str) -> tuple[RawRecord, int | None]:
    """The JSON value starting at text[i] as record n, and where it ends (None: it is broken)."""
    try:
        value, end = decoder.raw_decode(text, i)
    except (json.JSONDecodeError, RecursionError) as exc:
        return _broken(text, i, n, f"{where}{_json_error(exc)}; {consequence}"), None
    return RawRecord(n, text[i:end].encode("utf-8"), value=value), end


def _broken(text: str, start: int, line: int, message: str) -> RawRecord:
    return RawRecord(line, text[start:start + 65536].encode("utf-8"), error=RecordError("invalid_json", message))


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    return "nested too deeply"


def _parquet(path: Path) -> Iterator[RawRecord]:
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            n += 1
            row = {k: v for k, v in row.items() if v is not None}   # absent fields read as nulls
            yield RawRecord(n, json.dumps(row, ensure_ascii=False, default=str).encode("utf-8"), value=row)


def describe(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, EOFError):
        return f"compressed stream ends early (truncated gzip): {exc}"
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return f"corrupt gzip: {exc}"
    return f"{type(exc).__name__}: {exc}"


def parse_record(rec: RawRecord, max_record_bytes: int):
    """The JSON value of one raw record, or a RecordError naming what is wrong with it."""
    if len(rec.raw) > max_record_bytes:
        raise RecordError("oversized", f"record is {len(rec.raw):,} bytes, over max_record_bytes="
                                       f"{max_record_bytes:,}")
    if rec.error is not None:
        raise rec.error
    if rec.value is not NOT_PARSED:
        return rec.value
    try:
        text = rec.raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("bad_encoding", f"invalid UTF-8: byte {rec.raw[exc.start:exc.start + 1]!r} "
                                          f"at offset {exc.start} of the line") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError("invalid_json", f"{exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RecordError("invalid_json", "JSON nested too deeply") from None
