"""A deterministic UltraFeedback-format input for the rated-candidates benchmark: N prompts x 4
completions with fine-grained and overall scores. Like the real data it has ties (every candidate
of 8% of prompts scored alike), duplicate texts (two candidates of 5% of prompts say the same
thing) and bad values: 1% of candidates have no usable score (missing key, null or "N/A")."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = ("the model answer explains data pairs quickly because users often prefer short clear steps with "
         "examples code tests numbers sources and careful reasoning about edge cases while avoiding vague "
         "claims repeated filler or unsafe advice").split()
MODELS = ("gpt-4", "gpt-3.5-turbo", "llama-2-70b-chat", "wizardlm-13b", "falcon-40b-instruct", "mpt-30b-chat")
ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _text(rng: np.random.Generator, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi))))


def record(i: int, seed: int = 0) -> dict:
    rng = np.random.default_rng([seed, i])
    scores = rng.integers(2, 11, size=4) / 2.0            # 1.0 .. 5.0 in half steps
    if rng.random() < 0.08:
        scores[:] = scores[0]                              # every candidate ties
    responses = [_text(rng, 20, 60) for _ in range(4)]
    if rng.random() < 0.05:
        responses[3] = responses[0]                        # a duplicate text
    completions = []
    for k in range(4):
        c = {"model": MODELS[int(rng.integers(len(MODELS)))], "response": responses[k],
             "overall_score": float(min(10.0, scores[k] * 2)), "fine-grained_score": float(scores[k]),
             "annotations": {a: {"Rating": str(int(round(scores[k]))), "Rationale": "synthetic"} for a in ASPECTS}}
        bad = rng.random()
        if bad < 0.004:
            del c["fine-grained_score"]
        elif bad < 0.007:
            c["fine-grained_score"] = None
        elif bad < 0.010:
            c["fine-grained_score"] = "N/A"
        completions.append(c)
    return {"source": "synthetic", "instruction": f"[{i}] " + _text(rng, 8, 24) + "?",
            "models": [c["model"] for c in completions], "completions": completions}


def write(path: Path, n: int, seed: int = 0, start: int = 0) -> Path:
    """Write (once) records start .. start + N - 1 to `path` (JSONL); an existing file of the same
    N is reused."""
    path = Path(path)
    if path.exists() and sum(1 for _ in path.open("rb")) == n:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(json.dumps(record(i, seed)) + "\n")
    tmp.replace(path)
    return path
