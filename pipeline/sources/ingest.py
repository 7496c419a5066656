"""read_file / read_inputs: every input record ends up normalized in one of the canonical tables
or quarantined with a specific error kind; `records` lists them all."""
from __future__ import annotations

import glob
from collections import Counter
from pathlib import Path

import pyarrow as pa

from pipeline.config import SourcesConfig
from pipeline.schema import from_rows

from . import pii, rated, readers
from .batch import LINKS, RECORDS, TABLES, SourceBatch, merge, quarantine_row
from .detect import detect
from .fields import Ctx, RecordError, type_name

TEXT_COLUMNS = {"conversations": ["messages"], "ugc": ["text", "title"], "edits": ["prompt", "original", "edited"],
                "judgments": ["prompt", "response_a", "response_b"], "prompts": ["prompt"],
                "rated": ["prompt", "response"]}
MESSAGE_COLUMNS = {"messages", "prompt"}


def read_file(path, cfg: SourcesConfig, label: str | None = None) -> SourceBatch:
    """Read one file; a bad record is quarantined and reading goes on; an unreadable file gives one
    quarantine row with line 0."""
    path = Path(path)
    if rated.sniff(path):  # rated candidates have their own column-wise reader (no Python per record)
        return rated.read_rated(path, label or path.name, cfg, cfg.rated_score)
    reader = _FileReader(path, label or path.name, cfg)
    return merge([reader.run()])


def read_inputs(paths: list, cfg: SourcesConfig) -> SourceBatch:
    """Read every file in order, merge, and quarantine duplicate ids across the whole run."""
    paths = [Path(p) for p in paths]
    return merge([read_file(p, cfg, label) for p, label in zip(paths, unique_labels(paths))])


def expand_inputs(inputs: list[str]) -> list[str]:
    """Inputs as files: a glob pattern (`*`, `?`, `[`) becomes the files it matches, in sorted
    order, when the run starts (a scheduled run picks up the files that arrived since the last)."""
    out = []
    for item in inputs:
        if not any(c in item for c in "*?[") or Path(item).exists():
            out.append(item)
            continue
        matched = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
        if not matched:
            raise NoMatch(f"no file matches the input pattern {item!r}")
        out += matched
    return out


class NoMatch(ValueError):
    """An input pattern matched no file."""


def unique_labels(paths: list[Path]) -> list[str]:
    """Basenames, lengthened with parent folders where two inputs share one (then numbered)."""
    labels = [p.name for p in paths]
    for depth in range(2, 1 + max((len(p.parts) for p in paths), default=1)):
        clashes = {x for x in labels if labels.count(x) > 1}
        if not clashes:
            break
        labels = ["/".join(p.parts[-depth:]) if x in clashes else x for p, x in zip(paths, labels)]
    seen: Counter = Counter()
    out = []
    for x in labels:
        seen[x] += 1
        out.append(x if seen[x] == 1 else f"{x}#{seen[x]}")
    return out


class _FileReader:
    def __init__(self, path: Path, label: str, cfg: SourcesConfig):
        self.path, self.label, self.cfg = path, label, cfg
        self.source = str(path)
        self.rows: dict[str, list[dict]] = {name: [] for name in TABLES}
        self.links: list[dict] = []
        self.quarantine: list[dict] = []
        self.records: list[tuple[str, int]] = []
        self.counters: Counter = Counter()

    def run(self) -> SourceBatch:
        sha256 = size = mtime_ns = None
        try:
            mtime_ns = self.path.stat().st_mtime_ns
            sha256, size = readers.fingerprint(self.path)
            for rec in readers.iter_records(self.path):
                self._record(rec)
        except (readers.UnreadableFile, OSError) as exc:
            message = str(exc) if isinstance(exc, readers.UnreadableFile) else readers.describe(exc)
            if self.records:
                message += f" (after {len(self.records)} records were read)"
            self._quarantine(0, None, RecordError("unreadable_file", f"{self.source}: {message}"))
        return self._batch(sha256, size, mtime_ns)

    def _record(self, rec: readers.RawRecord) -> None:
        record_id = f"{self.label}:{rec.line}"
        try:
            value = readers.parse_record(rec, self.cfg.max_record_bytes)
            if not isinstance(value, dict):
                raise RecordError("not_an_object", f"expected a JSON object, got {type_name(value)}")
            fmt = detect(value)
            if fmt is None:
                keys = ", ".join(sorted(value)[:20]) + (", …" if len(value) > 20 else "")
                raise RecordError("unknown_format", f"no known record format has the keys [{keys}]")
            ctx = Ctx(record_id, self.cfg.max_text_chars, self.counters)
            out = fmt.normalize(value, ctx)
        except RecordError as exc:
            self._quarantine(rec.line, rec.raw, exc)
            return
        self.records.append((record_id, rec.line))
        for table, rows in out.items():
            for row in rows:
                row["record_id"] = record_id
                if table != "accepted_answers":
                    row["format"] = fmt.name
            (self.links if table == "accepted_answers" else self.rows[table]).extend(rows)

    def _quarantine(self, line: int, raw: bytes | None, exc: RecordError) -> None:
        record_id = f"{self.label}:{line}"
        self.records.append((record_id, line))
        self.quarantine.append(quarantine_row(record_id, self.source, line, exc.kind, exc.message, raw))

    def _batch(self, sha256: str | None, size: int | None, mtime_ns: int | None) -> SourceBatch:
        stats = {"pii_scrubbed": {kind: 0 for kind in pii.KINDS} if self.cfg.scrub_pii else {},
                 "normalized": dict(self.counters)}
        tables = {name: from_rows(name, rows) for name, rows in self.rows.items()}
        quarantine = from_rows("quarantine", self.quarantine)
        if self.cfg.scrub_pii:
            counts: Counter = Counter()
            tables = {name: _scrub(name, t, counts) for name, t in tables.items()}
            quarantine = pii.scrub_raw(quarantine, counts)
            stats["pii_scrubbed"].update(counts)
        records = pa.table({"record_id": [r for r, _ in self.records], "source_file": [self.source] * len(self.records),
                            "line": [n for _, n in self.records]}, schema=RECORDS)
        return SourceBatch(
            tables=tables, quarantine=quarantine, records=records,
            inputs=[{"path": self.source, "label": self.label, "sha256": sha256, "bytes": size,
                     "records": len(self.records), "mtime_ns": mtime_ns}],
            stats=stats, accepted_answers=pa.Table.from_pylist(self.links, schema=LINKS))


def _scrub(name: str, table: pa.Table, counts: Counter) -> pa.Table:
    for column in TEXT_COLUMNS[name]:
        if not table.num_rows:
            break
        index = table.schema.get_field_index(column)
        scrub = pii.scrub_messages if column in MESSAGE_COLUMNS else pii.scrub
        table = table.set_column(index, table.schema.field(index), scrub(table[column], counts))
    return table
