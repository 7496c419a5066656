"""Sample N answers per prompt from the policy, score each with a pointwise annotator, and pair
the best with the worst (best-of-N, FLR mining, PUGC). Ties at the top or bottom go to the lower
sample index; a prompt whose scored samples all tie, or with fewer than two scored, makes no pair
and says why."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.annotate.base import row_error
from pipeline.config_annotate import AnnotatorSpec
from pipeline.config_recipes import SamplingConfig
from pipeline.recipes.context import RecipeContext, sampling_of
from pipeline.schema import empty
from pipeline.signals.common import id_lists, pairs_table


@dataclass
class Ranked:
    pairs: pa.Table
    unpaired: list[tuple[str, str]] = field(default_factory=list)   # (record_id, reason)
    stats: dict = field(default_factory=dict)


def sample_and_rank(ctx: RecipeContext, name: str, recipe_type: str, prompts: pa.Table, n: int,
                    sampling_cfg: SamplingConfig, scorer_spec: AnnotatorSpec, signal: str,
                    evidence: list[dict] | None = None) -> Ranked:
    """prompts: record_ids (list), prompt, source [, reference: the text the scorer grades
    against]; `evidence` adds per-prompt facts to each pair's evidence."""
    runner = ctx.runner()
    sampling = sampling_of(sampling_cfg, n)
    chats = prompts["prompt"].to_pylist()
    began = time.perf_counter()
    ctx.log(f"{name}: sampling {n} answers for each of {len(chats)} prompts with {ctx.policy_origin}")
    results = runner.generate(chats, sampling)
    generated = time.perf_counter() - began

    owner, texts, gens, unpaired = [], [], [], []
    record_ids = prompts["record_ids"].to_pylist()
    for i, (ids, result) in enumerate(zip(record_ids, results)):
        if result.error is not None:
            unpaired += [(r, f"{name}: the policy could not take the prompt ({row_error(result)})") for r in ids]
            continue
        for k, c in enumerate(result.value):
            owner.append(i)
            texts.append(c.text)
            gens.append(ctx.generated(runner, sampling, result, k, ctx.policy_origin))
    scorer = ctx.scorer(scorer_spec)
    items = {"prompt": pa.array([chats[i] for i in owner], prompts["prompt"].type),
             "response": pa.array(texts, pa.string())}
    if "reference" in prompts.column_names:
        refs = prompts["reference"].to_pylist()
        items["reference"] = pa.array([refs[i] for i in owner], pa.string())
    ctx.log(f"{name}: scoring {len(texts)} answers with {scorer_spec.name} ({scorer_spec.type})")
    scored = scorer.score(pa.table(items)) if texts else None
    scores = np.array([np.nan if s is None else s for s in scored["score"].to_pylist()], dtype=float) \
        if texts else np.zeros(0)
    errors = scored["error"].to_pylist() if texts else []
    raw = scored["evidence"].to_pylist() if texts else []

    owner = np.asarray(owner, dtype=int)  # non-decreasing: each prompt's samples are contiguous
    rows, ties, few = [], 0, 0
    described = scorer.describe()
    groups, starts = np.unique(owner, return_index=True)
    for i, start, end in zip(groups, starts, np.r_[starts[1:], len(owner)].astype(int)):
        idx = np.arange(start, end)
        ok = idx[np.isfinite(scores[idx])]
        if len(ok) < 2:
            few += 1
            why = Counter(e for e in (errors[j] for j in idx) if e)
            unpaired += [(r, f"{name}: {len(ok)} of {n} answers scored (" +
                          "; ".join(f"{k} x{v}" for k, v in why.most_common(2)) + ")") for r in record_ids[i]]
            continue
        best = ok[np.argmax(scores[ok])]     # argmax/argmin take the first (lowest sample index) on ties
        worst = ok[np.argmin(scores[ok])]
        if scores[best] == scores[worst]:
            ties += 1
            unpaired += [(r, f"{name}: all {len(ok)} scored answers tie at {scores[best]:g}") for r in record_ids[i]]
            continue
        ev = {"recipe_type": recipe_type, "n": n,
              "scores": [None if not np.isfinite(scores[j]) else round(float(scores[j]), 6) for j in idx],
              "chosen_index": int(best - idx[0]), "rejected_index": int(worst - idx[0]), "scorer": described,
              "chosen_evidence": json.loads(raw[best]) if raw[best] else None,
              "rejected_evidence": json.loads(raw[worst]) if raw[worst] else None,
              **(evidence[i] if evidence is not None else {})}
        rows.append((i, best, worst, ev))

    stats = {"prompts": len(chats), "answers": len(texts), "scored": int(np.isfinite(scores).sum()),
             "pairs": len(rows), "all_tied": ties, "too_few_scored": few,
             "unscored": dict(Counter(e.split(":")[0] for e in errors if e)),
             "generation_seconds": round(generated, 3), "scoring_seconds": round(scorer.cost.seconds, 3)}
    if not rows:
        return Ranked(empty("raw_pairs"), unpaired, stats)
    p, b, w = (np.array([r[k] for r in rows]) for k in range(3))
    margin = scores[b] - scores[w]
    pairs = pairs_table(
        len(rows), prompt=prompts["prompt"].take(pa.array(p)), chosen=pa.array([texts[j] for j in b]),
        rejected=pa.array([texts[j] for j in w]), score_chosen=scores[b], score_rejected=scores[w], margin=margin,
        source=prompts["source"].take(pa.array(p)), signal=signal, annotator=f"{scorer_spec.type}:{scorer_spec.name}",
        weight=1.0, input_ids=id_lists(prompts["record_ids"].take(pa.array(p))), signal_value=margin,
        evidence=pa.array([json.dumps(r[3], ensure_ascii=False) for r in rows]), recipe=name,
        chosen_origin=ctx.policy_origin, rejected_origin=ctx.policy_origin,
        generator=pa.array([json.dumps({"chosen": gens[j], "rejected": gens[k]}) for j, k in zip(b, w)]))
    return Ranked(pairs, unpaired, stats)
