import pytest

from pipeline.config import ConfigError, CurateConfig, load_config
from conftest import ROOT


def test_example_config_documents_exactly_the_defaults():
    assert load_config(ROOT / "data" / "config.example.yaml").digest() == CurateConfig().digest()


@pytest.mark.parametrize("text, needle", [
    ("filters:\n  per_prompt_cap: many\n", "filters.per_prompt_cap"),
    ("signals:\n  edits:\n    min_distanse: 0.1\n", "signals.edits.min_distanse"),
    ("- just\n- a list\n", "expected a mapping"),
    ("filters: [unclosed\n", "not valid YAML"),
    ("batch_size: 0\n", "batch_size"),
    ("filters:\n  per_prompt_cap: 0\n", "per_prompt_cap"),
    ("filters:\n  min_margin:\n    dsat-sat: 0.5\n", "unknown signal"),
])
def test_unusable_config_is_a_clear_error(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(path)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")

