"""`prefmill models prepare`: the bundled GGUF becomes a safetensors folder, once, with a content
revision; model references never download anything."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.models import ModelError, resolve
from pipeline.models.refs import REVISION_FILE, folder_revision

pytestmark = pytest.mark.slow
PREFMILL = str(Path(sys.executable).with_name("prefmill"))


def test_prepare_converts_the_bundled_gguf_deterministically(tmp_path, model_ref):
    env = {**os.environ, "PREFMILL_MODELS": str(tmp_path / "models")}
    listed = subprocess.run([PREFMILL, "models", "list", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(listed.stdout.splitlines()[-1])[0]["prepared"] is False
    proc = subprocess.run([PREFMILL, "models", "prepare"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = tmp_path / "models" / "SmolLM2-135M-Instruct"
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", REVISION_FILE} <= names
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".tmp-")]
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    # The same GGUF gives the same weights: the revision equals the session's prepared copy.
    assert json.loads((folder / REVISION_FILE).read_text())["revision"] == model_ref.revision
    listed = subprocess.run([PREFMILL, "models", "list", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(listed.stdout.splitlines()[-1])[0]["prepared"] is True


def test_local_folder_revision_is_a_content_hash(tmp_path, model_ref):
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in model_ref.path.iterdir():
        if p.name != REVISION_FILE:
            (copy / p.name).symlink_to(p)
    ref = resolve(str(copy))
    assert ref.revision == model_ref.revision and ref.path == copy.resolve()
    (copy / "chat_template.jinja").unlink()
    (copy / "chat_template.jinja").write_text("{{ messages }}")
    assert folder_revision(copy) != model_ref.revision


def test_unknown_reference_is_refused_without_download(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="nothing is downloaded at run time"):
        resolve("HuggingFaceTB/SmolLM2-360M-Instruct")
    monkeypatch.setenv("PREFMILL_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="not prepared"):
        resolve(None, prepare_missing=False)
