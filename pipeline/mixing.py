"""The mixing report of a version (methods 2.4 / 4.6 "More is Less", S18): per slice (recipe and
signal) of the kept pairs, who wrote chosen and rejected, the share of pairs whose sides come
from different model families, and how separable chosen is from rejected for a linear probe on
sentence embeddings (cross-validated ROC AUC; 0.5 = indistinguishable). A model trained on a
separable slice can learn the surface cue instead of the preference. Warnings go to the manifest
and the CLI summary."""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.columns import first_content, per_value, value_counts
from pipeline.config_recipes import MixingConfig

FAMILIES = [(re.compile(p, re.I), f) for p, f in (
    (r"smollm", "smollm"), (r"llama", "llama"), (r"qwen", "qwen"), (r"mistral|mixtral", "mistral"),
    (r"gemma", "gemma"), (r"\bphi", "phi"), (r"gpt|chatgpt|openai|\bo\d\b", "gpt"), (r"claude", "claude"),
    (r"deepseek", "deepseek"), (r"olmo", "olmo"), (r"falcon", "falcon"), (r"zephyr", "mistral"))]


@cache  # a run has a handful of distinct (origin, model)
def family(origin: str, log_family: str = "log", model: str | None = None) -> str:
    """The model family of a side: from the model that wrote it (its lineage) when known, else
    from its origin. A human edit of a logged reply keeps the reply's family (the text is mostly
    the model's); an unknown model name is its own family."""
    if model is None:
        if origin in ("log", "human_edit"):
            return log_family
        if origin == "human":
            return "human"
        model = origin.split(":", 1)[-1].split("@", 1)[0]
    return next((f for pattern, f in FAMILIES if pattern.search(model)), model.lower())


SIDES = ("chosen", "rejected")


def mixing_report(kept: pa.Table, cfg: MixingConfig, cache_dir: Path | None,
                  texts: Callable[[np.ndarray], pa.Table]) -> dict:
    """`kept`: the kept pairs' lineage rows (recipe, signal, origins, generator), row for row the
    pairs table; `texts(rows)` gives those pairs' chosen and rejected (for the probe's sample)."""
    origin = {side: kept[f"{side}_origin"].to_numpy(zero_copy_only=False) for side in SIDES}

    def side_family(side: str):
        def fn(key: str | None) -> str:
            origin_, _, generator = (key or "").partition("\x1f")
            model = (json.loads(generator) if generator else {}).get(side, {}).get("model")  # null: implicit pairs
            return family(origin_, cfg.log_family, model)
        return fn

    fam = {side: per_value(pc.binary_join_element_wise(kept[f"{side}_origin"], pc.fill_null(kept["generator"], ""),
                                                        "\x1f"), side_family(side)) for side in SIDES}
    recipe, signal = kept["recipe"].to_numpy(zero_copy_only=False), kept["signal"].to_numpy(zero_copy_only=False)
    slices, warnings = {}, []
    for key in sorted(set(zip(recipe, signal))):
        rows = np.flatnonzero((recipe == key[0]) & (signal == key[1]))
        name = f"{key[0]}/{key[1]}"
        c_or, r_or = origin["chosen"][rows], origin["rejected"][rows]
        c_fam, r_fam = fam["chosen"][rows], fam["rejected"][rows]
        cross = float(np.mean(c_fam != r_fam))
        entry = {"pairs": int(len(rows)), "chosen_origin": value_counts(pa.array(c_or)),
                 "rejected_origin": value_counts(pa.array(r_or)), "cross_family_share": round(cross, 4),
                 "separability_auc": None}
        if cross > 0:
            warnings.append(f"{name}: chosen and rejected come from different model families in {cross:.0%} of "
                            f"{len(rows)} pairs (chosen {'/'.join(sorted(set(c_fam)))}, "
                            f"rejected {'/'.join(sorted(set(r_fam)))})")
        generated = any(o.startswith(("policy:", "generator:")) for o in (*c_or, *r_or))
        if cfg.separability == "all" or (cfg.separability == "generated" and generated):
            if len(rows) >= cfg.min_pairs:
                entry["separability_auc"] = probe(rows, texts, cfg, cache_dir)
                if entry["separability_auc"] > cfg.max_auc:
                    warnings.append(f"{name}: a linear probe on embeddings tells chosen from rejected with AUC "
                                    f"{entry['separability_auc']:.2f} > {cfg.max_auc}: surface cues may be "
                                    "learned instead of the preference")
            else:
                entry["separability_skipped"] = f"fewer than min_pairs {cfg.min_pairs} pairs"
        slices[name] = entry
    return {"pairs_by_recipe": value_counts(kept["recipe"]), "slices": slices, "warnings": warnings}


def probe(rows: np.ndarray, texts: Callable[[np.ndarray], pa.Table], cfg: MixingConfig,
          cache_dir: Path | None) -> float:
    """Cross-validated ROC AUC of a logistic regression telling chosen from rejected embeddings;
    folds keep both sides of a pair together, so a pair's prompt cannot leak across folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.metrics import roc_auc_score

    from pipeline.embed import embed

    rng = np.random.default_rng(0)
    sub = texts(np.sort(rng.choice(rows, size=min(cfg.max_pairs, len(rows)), replace=False)))
    chosen, rejected = first_content(sub["chosen"]).to_pylist(), first_content(sub["rejected"]).to_pylist()
    vectors, _ = embed(chosen + rejected, cfg.model, cache_dir)
    y = np.r_[np.ones(len(chosen)), np.zeros(len(rejected))]
    groups = np.r_[np.arange(len(chosen)), np.arange(len(rejected))]
    scores = cross_val_predict(LogisticRegression(max_iter=1000), vectors, y, groups=groups,
                               cv=GroupKFold(n_splits=5), method="predict_proba")[:, 1]
    return round(float(roc_auc_score(y, scores)), 4)
