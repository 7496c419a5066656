"""Arrow column helpers shared across stages: message lists, simple counts, per-value lookups."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.schema import MESSAGE


def as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (a ChunkedArray's chunks combined)."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def messages_of(role: str, texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """A one-message list [role: text] per row."""
    texts = as_array(texts)
    roles = pa.array(np.full(len(texts), role, dtype=object), pa.string())
    values = pa.StructArray.from_arrays([roles, pc.cast(texts, pa.string())], fields=list(MESSAGE))
    return pa.ListArray.from_arrays(pa.array(np.arange(len(texts) + 1, dtype=np.int32)), values)


def first_content(messages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The text of each row's first message (chosen/rejected hold exactly one)."""
    return pc.list_element(messages, 0).combine_chunks().field("content")


def value_counts(column: pa.Array | pa.ChunkedArray) -> dict:
    """{value: count} of a column, most frequent first."""
    if not len(column):
        return {}
    counts = sorted(pc.value_counts(column).to_pylist(), key=lambda c: -c["counts"])
    return {str(c["values"]): int(c["counts"]) for c in counts}


def per_value(column: pa.Array | pa.ChunkedArray, fn, dtype=object) -> np.ndarray:
    """fn(value) for every row, calling fn once per distinct value (a column of a few signals or
    origins over many rows costs a few calls, not one per row)."""
    encoded = _encoded(column)
    values = np.array([fn(v) for v in encoded.dictionary.to_pylist()] + [fn(None)], dtype=dtype)
    return values[pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False)]


def sorted_unique(strings: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What np.unique(values, return_index, return_inverse, return_counts) gives for a string
    column, hashed by Arrow instead of sorting Python objects: the distinct values in sorted order,
    each one's first row, every row's position among them, and their counts."""
    encoded = _encoded(strings)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()      # sorted position -> code
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))                            # code -> sorted position
    inverse = position[codes]
    _, first = np.unique(inverse, return_index=True)
    return (encoded.dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False), first, inverse,
            np.bincount(inverse, minlength=len(order)))


def _encoded(column: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """The column dictionary-encoded as one array (distinct values in first-seen order)."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        return encoded.combine_chunks() if encoded.num_chunks else pa.array([], column.type).dictionary_encode()
    return encoded
