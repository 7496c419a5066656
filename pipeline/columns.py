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
    order = _sort_order(encoded.dictionary)                            # sorted position -> code
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))                            # code -> sorted position
    inverse = position[codes]
    # codes are numbered in first-seen order: a code's first row is where it exceeds all before it
    first_of_code = np.flatnonzero(codes > np.maximum.accumulate(np.r_[-1, codes[:-1]]))
    return (encoded.dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False), first_of_code[order], inverse,
            np.bincount(inverse, minlength=len(order)))


_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def _sort_order(values: pa.Array) -> np.ndarray:
    """The indices that sort distinct strings. Lowercase hex digests of one length (the ids) sort as
    the integers of their first 16 digits, which is their string order when no two share those
    digits: an integer sort, several times faster than sorting the strings (1M ids: 0.2 vs 0.5-1 s)."""
    offsets = np.frombuffer(values.buffers()[1], np.int32)[values.offset:values.offset + len(values) + 1] \
        if len(values) and pa.types.is_string(values.type) else np.zeros(0, np.int32)
    width = int(offsets[1] - offsets[0]) if len(offsets) > 1 else 0
    if width >= 16 and not values.null_count and (np.diff(offsets) == width).all():
        text = np.frombuffer(values.buffers()[2], np.uint8)[offsets[0]:offsets[-1]].reshape(-1, width)
        digits = _HEX[text[:, :16]]
        if (digits < 16).all():
            packed = np.ascontiguousarray((digits[:, 0::2] << 4) | digits[:, 1::2])  # 8 bytes, big-endian
            key = packed.view(">u8").ravel().astype(np.uint64)
            order = np.argsort(key, kind="stable")
            if not (key[order][1:] == key[order][:-1]).any():
                return order
    return pc.array_sort_indices(values).to_numpy()


def _encoded(column: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """The column dictionary-encoded as one array (distinct values in first-seen order)."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        return encoded.combine_chunks() if encoded.num_chunks else pa.array([], column.type).dictionary_encode()
    return encoded
