"""Train small reward models on CPU from a pairs table, so RM ensembles (methods S12, §3.3) can be
built and tested without a GPU. Every member is a Bradley–Terry model r(x, y) = w·φ(x, y):
P(chosen ≻ rejected) = σ(w·(φ(chosen) − φ(rejected))), i.e. a logistic regression without
intercept on feature differences (symmetrized with the negated differences as label 0).

Two base encoders, so an ensemble can mix base models (Helping-or-Herding: members that differ
in pretraining beat members that differ only in fine-tuning seed):

* `train_embedding_rm`: φ = sentence-embedding features (`reward_models.embedding_features`);
* `train_lm_rm`: φ = the final-norm hidden state a `*ForSequenceClassification` model pools;
  the fitted w becomes its `score` head and the folder is a real Hugging Face reward model.

The seed draws the pair subsample, the train/held-out split (by prompt, so a prompt's pairs
never straddle it) and a bootstrap resample of the training pairs (Secrets of RLHF II: members
trained on different resamples of the data), so members with different seeds differ.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from pipeline.annotate.reward_models import (FEATURES, HEAD_FILE, RM_FILE, TRAINING_FILE, chat_ids,
                                             embedding_features, empty_errors, load_classifier,
                                             pooled_outputs)
from pipeline.hashing import pair_ids, prompt_ids, text_hash

DEFAULT_C = 1.0   # inverse L2 strength on RMS-scaled feature differences
SHORT_NAMES = {"all-MiniLM-L6-v2": "minilm", "SmolLM2-135M-Instruct": "smollm2"}
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def pair_texts(pairs: pa.Table) -> tuple[list[list[dict]], list[str], list[str]]:
    """Prompts (message lists) and the chosen / rejected responses as text (their messages'
    contents; a pair's side is normally one assistant message)."""
    missing = [c for c in PAIR_COLUMNS if c not in pairs.column_names]
    if missing:
        raise ValueError(f"a pairs table needs columns {list(PAIR_COLUMNS)}; missing {missing}")
    joined = [["\n\n".join(m["content"] for m in msgs) for msgs in pairs[c].to_pylist()] for c in ("chosen", "rejected")]
    return pairs["prompt"].to_pylist(), *joined


@dataclass
class Split:
    rows: np.ndarray      # the pairs drawn (at most max_pairs of the usable ones)
    train: np.ndarray     # bootstrap sample of training pair rows (with repeats)
    heldout: np.ndarray   # held-out pair rows
    usable: int           # pairs both sides of which the encoder can take


def split_pairs(pairs: pa.Table, seed: int, holdout: float, max_pairs: int,
                usable: np.ndarray | None = None) -> Split:
    """Subsample (max_pairs), split by prompt (holdout share of prompts), bootstrap the training
    pairs: all drawn from one generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(np.ones(pairs.num_rows, bool) if usable is None else usable)
    n_usable = len(rows)
    if len(rows) > max_pairs:
        rows = np.sort(rng.choice(rows, max_pairs, replace=False))
    groups, group_of = np.unique(prompt_ids(pairs["prompt"]).to_numpy(zero_copy_only=False)[rows],
                                 return_inverse=True)
    held_groups = rng.permutation(len(groups))[:int(round(holdout * len(groups)))]
    held = np.isin(group_of, held_groups)
    pool = rows[~held]
    if len(pool) < 2:
        raise ValueError(f"too few pairs to train on: {len(pool)} after holding out {held.sum()} "
                         f"of {n_usable} usable pairs")
    return Split(rows, np.sort(rng.choice(pool, len(pool), replace=True)), rows[held], n_usable)


def fit_bt(diffs: np.ndarray, C: float = DEFAULT_C) -> np.ndarray:
    """Bradley–Terry weights from φ(chosen) − φ(rejected) rows. Features are scaled to unit RMS
    for the fit (so L2 treats them alike) and the scale is folded back into w."""
    from sklearn.linear_model import LogisticRegression

    scale = np.sqrt(np.mean(diffs ** 2, axis=0))
    scale[scale == 0] = 1.0
    x = diffs / scale
    y = np.r_[np.ones(len(x)), np.zeros(len(x))]
    fit = LogisticRegression(fit_intercept=False, C=C, max_iter=5000).fit(np.vstack([x, -x]), y)
    return fit.coef_[0] / scale


def accuracy(delta: np.ndarray) -> float | None:
    """Pairwise accuracy of reward differences r(chosen) − r(rejected); a tie counts half."""
    return float(np.mean((delta > 0) + 0.5 * (delta == 0))) if len(delta) else None


def fingerprint(pairs: pa.Table, rows: np.ndarray) -> str:
    """Hash of the pair ids of `rows`, repeats included (a bootstrap sample is what was fit)."""
    picked = pairs.select(PAIR_COLUMNS).take(pa.array(rows, pa.int64()))
    ids = pair_ids(picked["prompt"], picked["chosen"], picked["rejected"]).to_pylist()
    return text_hash("\n".join(sorted(ids)))


def _fit_and_report(pairs: pa.Table, split: Split, phi_c: np.ndarray, phi_r: np.ndarray,
                    needed: np.ndarray, C: float) -> tuple[np.ndarray, dict]:
    """Fit on the bootstrap sample; accuracies on it and on the held-out pairs."""
    diffs = phi_c - phi_r
    at = {row: i for i, row in enumerate(needed)}
    train, held = [at[r] for r in split.train], [at[r] for r in split.heldout]
    w = fit_bt(diffs[train], C)
    return w, {"C": C, "pairs_in": pairs.num_rows, "pairs_usable": split.usable,
               "train_pairs": len(split.train), "train_unique": len(set(split.train.tolist())),
               "heldout_pairs": len(split.heldout),
               "train_fingerprint": fingerprint(pairs, split.train),
               "heldout_fingerprint": fingerprint(pairs, split.heldout),
               "train_accuracy": accuracy(diffs[train] @ w), "heldout_accuracy": accuracy(diffs[held] @ w)}


def _publish(out_dir: Path, write: Callable[[Path], None]) -> None:
    """Write the folder under a private sibling name, then rename it into place: readers see the
    old member or the new one, never a half-written folder."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{out_dir.name}")
    tmp.mkdir()
    try:
        write(tmp)
        old = out_dir.with_name(f".old-{uuid.uuid4().hex[:12]}-{out_dir.name}")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def train_embedding_rm(pairs: pa.Table, out_dir, encoder: str = "all-MiniLM-L6-v2", seed: int = 0,
                       holdout: float = 0.2, max_pairs: int = 2000, C: float = DEFAULT_C,
                       cache_dir: Path | None = None) -> dict:
    """A linear BT head on sentence-embedding features, saved as rm.json + head.safetensors."""
    from safetensors.numpy import save_file

    prompts, chosen, rejected = pair_texts(pairs)
    usable = np.array([a is None and b is None for a, b in zip(empty_errors(chosen), empty_errors(rejected))])
    split = split_pairs(pairs, seed, holdout, max_pairs, usable)
    needed = split.rows  # all drawn pairs, not just this bootstrap: other seeds then hit the embedding cache
    p = [prompts[i] for i in needed]
    phi = embedding_features(p + p, [chosen[i] for i in needed] + [rejected[i] for i in needed], encoder, cache_dir)
    w, report = _fit_and_report(pairs, split, phi[:len(needed)], phi[len(needed):], needed, C)
    meta = {"type": "embedding_head", "encoder": encoder, "seed": seed, "features": FEATURES,
            "holdout": holdout, **report}

    def write(folder: Path) -> None:
        save_file({"weight": w.astype(np.float32)}, str(folder / HEAD_FILE))
        (folder / RM_FILE).write_text(json.dumps(meta, indent=2))

    _publish(out_dir, write)
    return {**meta, "path": str(out_dir)}


def train_lm_rm(pairs: pa.Table, out_dir, base: str | None = None, seed: int = 0, holdout: float = 0.2,
                max_pairs: int = 2000, max_length: int = 1024, C: float = DEFAULT_C, batch_size: int = 8,
                device: str = "cpu") -> dict:
    """A BT head on a causal LM's pooled hidden state, saved as a Hugging Face
    `*ForSequenceClassification` folder whose `score` head is the fitted w. Pairs with a side
    over max_length tokens are left out (the saved model would refuse them too)."""
    import torch

    from pipeline.models.refs import resolve

    ref = resolve(base)
    model, tokenizer = load_classifier(ref.path, device, num_labels=1)
    prompts, chosen, rejected = pair_texts(pairs)
    ids_c, err_c = chat_ids(tokenizer, prompts, chosen, max_length)
    ids_r, err_r = chat_ids(tokenizer, prompts, rejected, max_length)
    split = split_pairs(pairs, seed, holdout, max_pairs, np.array([a is None and b is None for a, b in zip(err_c, err_r)]))
    needed = np.union1d(split.train, split.heldout)
    head, model.score = model.score, torch.nn.Identity()  # the model's output is then the pooled feature
    phi = pooled_outputs(model, tokenizer, [ids_c[i] for i in needed] + [ids_r[i] for i in needed],
                         batch_size, device).astype(np.float64)
    w, report = _fit_and_report(pairs, split, phi[:len(needed)], phi[len(needed):], needed, C)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(w, dtype=head.weight.dtype).reshape(head.weight.shape))
    model.score = head
    meta = {"type": "lm_head", "base": ref.name, "base_revision": ref.revision, "seed": seed,
            "features": "final-norm hidden state at the last non-pad token (the model's own pooling)",
            "max_length": max_length, "holdout": holdout, **report}

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        (folder / TRAINING_FILE).write_text(json.dumps(meta, indent=2))

    _publish(out_dir, write)
    return {**meta, "path": str(out_dir)}


def encoder_kind(encoder: str) -> str:
    """'embedding' for a sentence-transformers model (bundled name or folder with modules.json),
    'lm' for a causal LM (bundled name or Hugging Face folder)."""
    from pipeline.embed import BUNDLED as EMBEDDERS
    from pipeline.models.refs import BUNDLED as LMS

    folder = Path(encoder).expanduser()
    if encoder in EMBEDDERS or (folder / "modules.json").is_file():
        return "embedding"
    if encoder in LMS or (folder / "config.json").is_file():
        return "lm"
    raise ValueError(f"encoder {encoder!r} is neither a bundled model ({', '.join([*EMBEDDERS, *LMS])}) "
                     "nor a local sentence-transformers or Hugging Face folder")


def member_dirname(encoder: str, seed: int) -> str:
    short = SHORT_NAMES.get(encoder) or re.sub(r"[^a-z0-9]+", "-", Path(encoder).name.lower()).strip("-")
    return f"{short}-s{seed}"


def train_member(pairs: pa.Table, out_dir, encoder: str, seed: int = 0, max_length: int = 1024,
                 cache_dir: Path | None = None, **kwargs) -> dict:
    """Train one member with the trainer that fits `encoder` (cache_dir: embedding cache)."""
    if encoder_kind(encoder) == "embedding":
        return train_embedding_rm(pairs, out_dir, encoder=encoder, seed=seed, cache_dir=cache_dir, **kwargs)
    return train_lm_rm(pairs, out_dir, base=encoder, seed=seed, max_length=max_length, **kwargs)
