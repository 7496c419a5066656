"""Reward-model ensemble members (methods S12): anything that maps (prompt, response) to one
float. Two kinds, both loaded from a local folder (nothing is downloaded at run time):

* `HFRewardModel`: any Hugging Face `AutoModelForSequenceClassification` with one label (e.g.
  Skywork-Reward-V2 on a GPU, or a model `reward_train.train_lm_rm` saved);
* `EmbeddingHeadRM`: a linear Bradley–Terry head over sentence embeddings (`reward_train`).

A member never guesses: an item it cannot score gets NaN and an error "kind: detail"
(`empty_text`, `context_overflow`). Rewards are cached by (member revision, params, prompt,
response) in a RequestCache, so a rerun costs nothing.
"""
from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from pipeline.hashing import file_sha256, text_hash
from pipeline.models.cache import RequestCache, request_key
from pipeline.models.refs import folder_revision

RM_FILE = "rm.json"                 # an EmbeddingHeadRM folder: its metadata
HEAD_FILE = "head.safetensors"      # ... and its linear head ("weight", shape [features])
TRAINING_FILE = "training.json"     # how a trained HF reward model was fitted (optional)


def prompt_text(messages: list[dict]) -> str:
    return "\n\n".join(m["content"] for m in messages)


def empty_errors(responses: list[str]) -> list[str | None]:
    return [None if r and r.strip() else "empty_text: the response is empty" for r in responses]


class RewardMember:
    """Shared by members: the cache around `_compute`. Subclasses set name, revision and kind."""
    name: str
    revision: str
    kind: str

    def __init__(self):
        self.computed = 0   # items this member ran its model on (cache misses)
        self.cached = 0     # items served from the cache

    def params(self) -> dict:
        """What besides the revision decides a reward (part of the cache key)."""
        return {}

    def describe(self) -> dict:
        raise NotImplementedError

    def _compute(self, prompts: list[list[dict]], responses: list[str]) -> tuple[np.ndarray, list[str | None]]:
        raise NotImplementedError

    def evaluate(self, prompts: list[list[dict]], responses: list[str],
                 cache: RequestCache | None = None) -> tuple[np.ndarray, list[str | None]]:
        """(rewards, errors): NaN and an error string where the item could not be scored."""
        keys = [request_key("reward", self.kind, self.revision, self.params(), {"prompt": p, "response": r})
                for p, r in zip(prompts, responses)]
        known = cache.get_many(keys) if cache else {}
        todo = list(dict.fromkeys(k for k in keys if k not in known))
        if todo:
            where = {k: i for i, k in enumerate(keys)}
            idx = [where[k] for k in todo]
            values, errors = self._compute([prompts[i] for i in idx], [responses[i] for i in idx])
            fresh = {k: {"reward": None if np.isnan(v) else float(v), "error": e}
                     for k, v, e in zip(todo, values, errors)}
            if cache:
                cache.put_many("reward", f"{self.name}@{self.revision[:12]}", fresh)
            known = {**known, **fresh}
        self.computed += len(todo)
        self.cached += len(set(keys)) - len(todo)
        rewards = np.array([np.nan if known[k]["reward"] is None else known[k]["reward"] for k in keys], float)
        return rewards, [known[k]["error"] for k in keys]

    def rewards(self, prompts: list[list[dict]], responses: list[str],
                cache: RequestCache | None = None) -> np.ndarray:
        return self.evaluate(prompts, responses, cache)[0]


# ---- Hugging Face sequence-classification reward models -------------------------------------

def chat_ids(tokenizer, prompts: list[list[dict]], responses: list[str],
             max_length: int) -> tuple[list[list[int] | None], list[str | None]]:
    """Token ids of prompt + [assistant: response] in the model's chat template (no generation
    prompt; the template adds BOS if the model wants one), or None and an error: empty
    responses and chats over max_length are refused, not truncated (truncation would score a
    different text)."""
    errors = empty_errors(responses)
    ids: list[list[int] | None] = [None] * len(responses)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if errors[i]:
            continue
        text = tokenizer.apply_chat_template([*p, {"role": "assistant", "content": r}], tokenize=False)
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(tokens) > max_length:
            errors[i] = f"context_overflow: the chat is {len(tokens)} tokens, over max_length={max_length}"
        else:
            ids[i] = tokens
    return ids, errors


def pooled_outputs(model, tokenizer, ids: list[list[int]], batch_size: int, device: str) -> np.ndarray:
    """`model(...).logits` per sequence (a sequence-classification model pools the rightmost
    non-pad token), batched by similar length with the tokenizer's padding."""
    import torch
    from rich.progress import track

    order = np.argsort([len(x) for x in ids], kind="stable")
    out: list[np.ndarray] = [None] * len(ids)
    starts = range(0, len(ids), batch_size)
    for start in track(starts, description="reward model", transient=True, disable=len(starts) < 8):
        rows = order[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt").to(device)
        with torch.inference_mode():
            logits = model(**batch).logits.float().cpu().numpy()
        for i, row in zip(rows, logits):
            out[i] = row
    return np.stack(out) if out else np.zeros((0, 1), np.float32)


def load_classifier(path, device: str = "cpu", dtype: str | None = None, num_labels: int | None = None):
    """(model, tokenizer) in eval mode, with config.pad_token_id set so batches can be padded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch_dtype = getattr(torch, dtype) if dtype else (torch.float32 if device == "cpu" else torch.bfloat16)
    extra = {"num_labels": num_labels} if num_labels else {}
    model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=torch_dtype, **extra)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


class HFRewardModel(RewardMember):
    """A local Hugging Face sequence-classification reward model (num_labels == 1); the reward is
    logits[:, 0] of prompt + [assistant: response] in its chat template. The model loads on first
    use, so a fully cached run never loads it."""
    kind = "hf_reward"

    def __init__(self, path, batch_size: int = 8, device: str = "cpu", max_length: int = 2048,
                 dtype: str | None = None, name: str | None = None):
        super().__init__()
        self.path = Path(path)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(self.path))
        if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            raise ValueError(f"{path}: not a sequence-classification model (architectures {config.architectures})")
        if config.num_labels != 1:
            raise ValueError(f"{path}: a reward model has one label, this one has {config.num_labels}")
        self.name = name or self.path.name
        self.revision = folder_revision(self.path)
        self.batch_size, self.device, self.max_length, self.dtype = batch_size, device, max_length, dtype

    def params(self) -> dict:
        return {"max_length": self.max_length, "dtype": self.dtype or ("float32" if self.device == "cpu" else "bfloat16")}

    @cached_property
    def loaded(self):
        return load_classifier(self.path, self.device, self.dtype)

    def describe(self) -> dict:
        training = self.path / TRAINING_FILE
        return {"type": self.kind, "name": self.name, "path": str(self.path), "revision": self.revision,
                **self.params(), **({"training": json.loads(training.read_text())} if training.exists() else {})}

    def _compute(self, prompts, responses):
        model, tokenizer = self.loaded
        ids, errors = chat_ids(tokenizer, prompts, responses, self.max_length)
        ok = [i for i, x in enumerate(ids) if x is not None]
        rewards = np.full(len(ids), np.nan)
        if ok:
            rewards[ok] = pooled_outputs(model, tokenizer, [ids[i] for i in ok], self.batch_size, self.device)[:, 0]
        return rewards, errors


def _config(path: Path) -> dict:
    file = path / "config.json"
    return json.loads(file.read_text()) if file.is_file() else {}


# ---- heads on sentence embeddings --------------------------------------------------------------

FEATURES = "concat(e_response, e_prompt * e_response), unit-normalized embeddings"


def embedding_features(prompts: list[list[dict]], responses: list[str], encoder: str,
                       cache_dir: Path | None = None) -> np.ndarray:
    """φ(prompt, response) = [e_r, e_p ⊙ e_r]: the response's quality on its own, and how it
    matches the prompt (the product is what a linear head can use for relevance)."""
    from pipeline.embed import embed

    vectors, _ = embed([prompt_text(p) for p in prompts] + list(responses), encoder, cache_dir)
    e_p, e_r = vectors[:len(prompts)], vectors[len(prompts):]
    return np.hstack([e_r, e_p * e_r]).astype(np.float64)


class EmbeddingHeadRM(RewardMember):
    """A linear head over sentence embeddings that prefmill trained (`reward_train`)."""
    kind = "embedding_head"

    def __init__(self, folder, cache_dir: Path | None = None, name: str | None = None):
        from safetensors.numpy import load_file

        super().__init__()
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / RM_FILE).read_text())
        self.weight = load_file(str(self.folder / HEAD_FILE))["weight"].astype(np.float64)
        self.name = name or self.folder.name
        self.revision = text_hash(json.dumps([file_sha256(self.folder / f)[0] for f in (RM_FILE, HEAD_FILE)]))
        self.cache_dir = cache_dir

    def describe(self) -> dict:
        return {"type": self.kind, "name": self.name, "path": str(self.folder), "revision": self.revision,
                **self.meta}

    def _compute(self, prompts, responses):
        errors = empty_errors(responses)
        ok = [i for i, e in enumerate(errors) if e is None]
        rewards = np.full(len(responses), np.nan)
        if ok:
            phi = embedding_features([prompts[i] for i in ok], [responses[i] for i in ok],
                                     self.meta["encoder"], self.cache_dir)
            rewards[ok] = phi @ self.weight
        return rewards, errors


def load_member(path, **kwargs) -> RewardMember:
    """A member from its folder: rm.json -> EmbeddingHeadRM; a config.json whose architecture is
    *ForSequenceClassification -> HFRewardModel. kwargs go to the member's constructor."""
    path = Path(path)
    if (path / RM_FILE).is_file():
        return EmbeddingHeadRM(path, **kwargs)
    architectures = _config(path).get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return HFRewardModel(path, **kwargs)
    found = f"architectures {architectures}" if architectures else "no rm.json and no config.json"
    raise ValueError(f"{path}: not a reward model folder ({found}); expected {RM_FILE} (a head prefmill "
                     "trained) or a Hugging Face *ForSequenceClassification model")
