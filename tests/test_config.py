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
    ("recipes:\n  - {name: d, type: dirft}\n", "does not match any of the expected tags"),
    ("recipes:\n  - {name: d, type: drift}\n  - {name: d, type: best_of_n}\n", "recipe names must be unique"),
    ("policy: {model: big}\n", "policy: model 'big' is not in `models`"),
    ("recipes:\n  - {name: w, type: wildfeedback, generator: gpt}\n", "recipe 'w': model 'gpt' is not in `models`"),
    ("recipes:\n  - {name: b, type: best_of_n, scorer: {name: j, type: pairwise_judge}}\n", "pointwise scorer"),
    ("recipes:\n  - {name: p, type: pugc, scorer: {name: f, type: flr}}\n", "must be a rubric_judge"),
    ("recipes:\n  - {name: b, type: best_of_n, sampling: {temperature: 0}}\n", "temperature 0"),
    ("recipes:\n  - {name: b, type: best_of_n, n: 1}\n", "recipes.0.best_of_n.n"),
    ("annotate:\n  models: {}\n", "annotate.models: Extra inputs"),  # endpoints are top-level `models`
])
def test_unusable_config_is_a_clear_error(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(path)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")

