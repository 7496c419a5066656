"""The mixing report on real texts: model families of each side, and the separability probe
(real sentence embeddings, cross-validated logistic regression) on a slice whose sides come
from different sources versus one whose sides are drawn from the same pool."""
import json

import numpy as np
import pyarrow as pa
import pytest

from pair_rows import raw_pair, raw_table
from pipeline.config_recipes import MixingConfig
from pipeline.mixing import family, mixing_report
from pipeline.pairs import build_pairs, finalize
from annotate_items import SAMPLES


def test_family_of_each_origin():
    assert family("policy:SmolLM2-135M-Instruct@iter0") == "smollm"
    assert family("generator:Qwen2.5-7B-Instruct") == "qwen"
    assert family("policy:Meta-Llama-3-8B-Instruct@iter2") == "llama"
    assert family("policy:my-policy@iter1") == "my-policy"
    assert family("log", "gpt") == "gpt" and family("human_edit", "gpt") == "gpt"  # an edit keeps the reply's family
    assert family("human") == "human"
    assert family("policy:my-policy@iter1", model="Qwen2.5-0.5B-Instruct") == "qwen"  # the model, not the label


@pytest.fixture(scope="module")
def texts():
    answers = [json.loads(line) for line in (SAMPLES / "se_beer_posts.jsonl").read_text().splitlines()]
    ugc = [a["Body"] for a in answers if a.get("PostTypeId") == "2" and 200 < len(a.get("Body", "")) < 2000][:80]
    import gzip
    chats = [json.loads(line) for line in gzip.open(SAMPLES / "sharegpt_multiturn.jsonl.gz", "rt")]
    replies = [t["value"] for c in chats for t in c["conversations"] if t["from"] == "gpt" and 200 < len(t["value"]) < 2000]
    return ugc, replies[:80]


def _report(rows, origins, tmp_path, **cfg):
    raw = raw_table([{**raw_pair(f"question {i}", c, r, signal="rubric_judge", ids=[f"f:{i}"]), "recipe": "bon",
                      "chosen_origin": origins[0], "rejected_origin": origins[1]} for i, (c, r) in enumerate(rows)])
    pairs, lineage = finalize(build_pairs(raw))
    return mixing_report(lineage.filter(lineage["kept"]), MixingConfig(**cfg), tmp_path,
                         lambda rows: pairs.take(pa.array(rows)))


def test_sides_from_different_sources_are_separable_and_warned(texts, tmp_path):
    ugc, replies = texts
    report = _report(list(zip(ugc[:60], replies[:60])), ("generator:Qwen2.5-7B-Instruct", "log"), tmp_path)
    entry = report["slices"]["bon/rubric_judge"]
    assert entry["pairs"] == 60 and entry["cross_family_share"] == 1.0
    assert entry["separability_auc"] > 0.95
    assert any("different model families in 100% of 60 pairs" in w for w in report["warnings"])
    assert any("linear probe" in w for w in report["warnings"])
    assert report["pairs_by_recipe"] == {"bon": 60}


def test_sides_drawn_from_one_pool_are_not_separable(texts, tmp_path):
    _, replies = texts
    rng = np.random.default_rng(1)
    pool = rng.permutation(replies[:80])
    rows = list(zip(pool[:40], pool[40:]))
    policy = "policy:SmolLM2-135M-Instruct@iter0"
    report = _report(rows, (policy, policy), tmp_path)
    entry = report["slices"]["bon/rubric_judge"]
    assert entry["cross_family_share"] == 0.0 and entry["separability_auc"] < 0.8
    assert report["warnings"] == []


def test_probe_settings(texts, tmp_path):
    ugc, replies = texts
    rows = list(zip(ugc[:10], replies[:10]))
    small = _report(rows, ("policy:a@iter0", "log"), tmp_path)["slices"]["bon/rubric_judge"]
    assert small["separability_auc"] is None and small["separability_skipped"] == "fewer than min_pairs 20 pairs"
    off = _report(list(zip(ugc[:30], replies[:30])), ("policy:a@iter0", "log"), tmp_path, separability="off")
    assert off["slices"]["bon/rubric_judge"]["separability_auc"] is None
    implicit = _report(list(zip(ugc[:30], replies[:30])), ("log", "log"), tmp_path)  # `generated`: implicit not probed
    assert implicit["slices"]["bon/rubric_judge"]["separability_auc"] is None
