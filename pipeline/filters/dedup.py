"""Prompt near-duplicates, exact (same text after case/space/punctuation normalization) and
semantic (cosine of sentence embeddings >= threshold). Prompts linked either way form a group
(connected components); the prompt with the most pairs represents it and keeps its pairs, the
others' pairs are dropped with the representative named. Never drops a whole group."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.columns import sorted_unique
from pipeline.config import DedupConfig
from pipeline.hashing import messages_text


def exact_key(prompt_text: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(prompt_text)
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(
        pc.replace_substring_regex(lowered, r"[^\p{L}\p{N}\s]", ""), r"\s+", " "))


def similar_pairs(vectors: np.ndarray, threshold: float, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) with cosine >= threshold, computed block by block (bounded memory)."""
    rows, cols = [], []
    for start in range(0, len(vectors), block):
        sims = vectors[start:start + block] @ vectors.T
        i, j = np.nonzero(sims >= threshold)
        i = i + start
        upper = i < j
        rows.append(i[upper])
        cols.append(j[upper])
    return (np.concatenate(rows), np.concatenate(cols)) if rows else (np.zeros(0, int), np.zeros(0, int))


def dedup_prompts(table: pa.Table, cfg: DedupConfig, cache_dir: Path | None,
                  stats: dict) -> tuple[np.ndarray, np.ndarray]:
    n = table.num_rows
    if n == 0 or not (cfg.exact or cfg.semantic):
        return np.ones(n, bool), np.full(n, "prompt dedup disabled", dtype=object)
    uniq, first, inverse, counts = sorted_unique(table["prompt_id"])
    texts = messages_text(table["prompt"].take(pa.array(first)), with_roles=False)
    links_i, links_j, how = [np.zeros(0, int)], [np.zeros(0, int)], {}
    if cfg.exact:
        _, _, key_group, _ = sorted_unique(exact_key(texts))
        order = np.argsort(key_group, kind="stable")
        same = key_group[order][1:] == key_group[order][:-1]
        links_i.append(order[:-1][same])
        links_j.append(order[1:][same])
    if cfg.semantic and len(uniq) > 1:
        vectors, cache_stats = _embed(texts.to_pylist(), cfg.model, cache_dir)
        stats["embedding_cache"] = cache_stats
        i, j = similar_pairs(vectors, cfg.threshold)
        links_i.append(i)
        links_j.append(j)
        how.update({(a, b): float(vectors[a] @ vectors[b]) for a, b in zip(i, j)})
    i, j = np.concatenate(links_i), np.concatenate(links_j)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(uniq), len(uniq)))
    n_groups, group = connected_components(graph, directed=False)
    # representative: most pairs, then smallest prompt_id (uniq is sorted) for determinism
    order = np.lexsort((np.arange(len(uniq)), -counts))
    seen, first_in_order = np.unique(group[order], return_index=True)
    rep = np.empty(n_groups, dtype=np.int64)
    rep[seen] = order[first_in_order]
    stats["prompt_groups"] = {"prompts": int(len(uniq)), "groups": int(n_groups),
                              "duplicate_prompts": int(len(uniq) - n_groups)}
    prompt_rep = rep[group]
    passed = prompt_rep[inverse] == inverse
    # reasons per prompt (not per pair): only duplicate prompts need a sentence of their own
    prompt_reason = np.full(len(uniq), "representative of its prompt group", dtype=object)
    for p in np.flatnonzero(prompt_rep != np.arange(len(uniq))):
        r = prompt_rep[p]
        link = how.get((min(p, r), max(p, r)))
        detail = f"cosine {link:.3f}" if link is not None else "same normalized text or linked via the group"
        prompt_reason[p] = f"near-duplicate of prompt {uniq[r][:12]} ({detail})"
    return passed, prompt_reason[inverse]


def _embed(texts: list[str], model: str, cache_dir: Path | None):
    from pipeline.embed import embed

    return embed(texts, model, cache_dir)
