"""Versioned prompt templates and follow-up sets, stored as YAML beside this module (or given as
a path). A template's hash (SHA-256 of its canonical JSON) is recorded with every annotation, so
a changed prompt is a different annotator and never mixes with old cached verdicts."""
from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from pipeline.hashing import text_hash


class TemplateError(ValueError):
    """A template file that cannot be used; the message says which and why."""


@cache
def load_template(name_or_path: str, required: tuple[str, ...] = (), package: str = "pipeline.annotate") -> dict:
    """A template bundled in `package`'s templates/ folder by name (`rubric_judge`) or a YAML file
    path; adds `hash`."""
    path = Path(name_or_path)
    try:
        if path.suffix in (".yaml", ".yml"):
            text = path.read_text(encoding="utf-8")
        else:
            text = resources.files(package).joinpath("templates").joinpath(f"{name_or_path}.yaml").read_text(
                encoding="utf-8")
    except (OSError, FileNotFoundError) as exc:
        raise TemplateError(f"template {name_or_path!r}: cannot read it ({exc})") from exc
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise TemplateError(f"template {name_or_path!r}: expected a mapping")
    missing = [k for k in ("version", *required) if k not in data]
    if missing:
        raise TemplateError(f"template {name_or_path!r}: missing {', '.join(missing)}")
    return {**data, "hash": text_hash(json.dumps(data, sort_keys=True, ensure_ascii=False))}
