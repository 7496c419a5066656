"""Load the table contracts in `schemas/*.yaml` as pyarrow schemas and validate tables at stage
boundaries. The YAML files are the single definition; nothing else spells out a table's columns."""
from __future__ import annotations

from functools import cache
from importlib import resources

import pyarrow as pa
import yaml

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
DECISION = pa.struct([("filter", pa.string()), ("passed", pa.bool_()), ("reason", pa.string())])

TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "json": pa.string(),  # JSON text; DuckDB reads it with json_extract
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "binary": pa.binary(),
    "messages": pa.list_(MESSAGE),
    "list_string": pa.list_(pa.string()),
    "decisions": pa.list_(DECISION),
}

TABLES = ("raw_pairs", "unpaired", "candidates", "conversations", "ugc", "edits", "judgments", "prompts", "signals", "pairs", "lineage",
          "quarantine", "ledger", "manifest")


class SchemaError(ValueError):
    """A table does not match its contract in schemas/."""


@cache
def spec(name: str) -> dict:
    text = resources.files("schemas").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 10x faster, paid per run


@cache
def schema(name: str) -> pa.Schema:
    fields = []
    for f in spec(name)["fields"]:
        if f["type"] not in TYPES:
            raise SchemaError(f"schemas/{name}.yaml: unknown type {f['type']!r} for {f['name']}")
        fields.append(pa.field(f["name"], TYPES[f["type"]], nullable=f.get("nullable", False)))
    return pa.schema(fields)


def empty(name: str) -> pa.Table:
    return schema(name).empty_table()


def from_rows(name: str, rows: list[dict]) -> pa.Table:
    """Build a table from row dicts (used where rows are produced one by one, e.g. parsers)."""
    return pa.Table.from_pylist(rows, schema=schema(name)) if rows else empty(name)


def conform(name: str, table: pa.Table) -> pa.Table:
    """Validate `table` against the contract: same columns (extra ones are an error), castable
    types, no nulls in non-nullable columns. Returns the table cast and ordered as the schema."""
    target = schema(name)
    missing = [n for n in target.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in target.names]
    if missing or extra:
        raise SchemaError(f"{name}: missing columns {missing}, unexpected columns {extra}")
    table = table.select(target.names)
    try:
        table = table.cast(pa.schema([f.with_nullable(True) for f in target]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"{name}: {exc}") from exc
    for f in target:
        if not f.nullable and table.column(f.name).null_count:
            raise SchemaError(f"{name}: {table.column(f.name).null_count} null(s) in non-nullable column {f.name}")
    return table.cast(target)
