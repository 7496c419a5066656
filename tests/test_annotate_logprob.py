"""Log-prob annotators on the real engine: follow-up likelihood (FLR) and the density ratio (CDR),
checked against the model's own log-probs; the user-turn scoring they rely on; vLLM prefix-cache
reuse that reaches into a continuation."""
import json

import numpy as np
import pyarrow as pa
import pytest

from pipeline.annotate.density_ratio import DensityRatio
from pipeline.annotate.flr import FollowUpLikelihood
from pipeline.annotate.templates import TemplateError
from pipeline.models import ModelRunner
from annotate_items import pandalm_items, pointwise

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows():
    return pointwise(pandalm_items(4))


@pytest.fixture(scope="module")
def weak_runner():
    runner = ModelRunner("SmolLM2-135M-Instruct-half", backend="transformers", max_model_len=2048)
    yield runner
    runner.close()


def test_user_turn_scoring_scores_only_the_follow_up_text(hf_runner):
    enc = hf_runner.encoder
    chat = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]
    ctx, cont = enc.scoring(chat, "Thanks!", role="user")
    assert enc.tokenizer.decode(ctx).endswith("Blue.<|im_end|>\n<|im_start|>user\n")
    assert cont == enc.continuation_ids("Thanks!")
    assert enc.scoring(chat[:1], "Thanks!", role="user").kind == "bad_role"  # a follow-up needs a reply first


def test_flr_is_mean_positive_minus_mean_negative_follow_up_logprob(vllm_runner, rows):
    flr = FollowUpLikelihood("flr", runner=vllm_runner)
    out = flr.score(rows)
    pos, neg = flr.tpl["positive"], flr.tpl["negative"]
    for (prompt, response), s, e in zip(zip(rows["prompt"].to_pylist(), rows["response"].to_pylist()),
                                        out["score"].to_pylist(), out["evidence"].to_pylist()):
        ctx = [*prompt, {"role": "assistant", "content": response}]
        direct = [r.value.mean for r in vllm_runner.logprobs([(ctx, f, "user") for f in [*pos, *neg]])]
        expect = np.mean(direct[:len(pos)]) - np.mean(direct[len(pos):])
        assert s == pytest.approx(expect, abs=1e-6)
        assert json.loads(e)["flr_pos"] == pytest.approx(np.mean(direct[:len(pos)]), abs=1e-6)
    assert flr.describe()["followups"] == "flr-v1" and len(flr.describe()["followups_hash"]) == 64


def test_flr_sum_mode_and_failures(vllm_runner, rows, tmp_path):
    summed = FollowUpLikelihood("flr", runner=vllm_runner, normalize="sum").score(rows.slice(0, 2))
    mean = FollowUpLikelihood("flr", runner=vllm_runner).score(rows.slice(0, 2))
    assert summed["score"].to_pylist() != mean["score"].to_pylist()
    empty = rows.slice(0, 1).set_column(1, "response", pa.array([""]))
    got = FollowUpLikelihood("flr", runner=vllm_runner).score(empty)
    assert got["score"][0].as_py() is None and got["error"][0].as_py().startswith("empty_text")
    bad = tmp_path / "followups.yaml"
    bad.write_text("positive: [thanks]\n")
    with pytest.raises(TemplateError, match="missing version, negative"):
        FollowUpLikelihood("flr", runner=vllm_runner, followups=str(bad))


def test_density_ratio_of_a_model_over_itself_is_zero(hf_runner, rows):
    out = DensityRatio("cdr", strong=hf_runner, weak=hf_runner).score(rows)
    assert all(abs(s) < 1e-9 for s in out["score"].to_pylist())


def test_density_ratio_sums_response_tokens_skipping_newlines(hf_runner, weak_runner):
    prompt = [{"role": "user", "content": "Write two short lines about tea."}]
    text = "Tea is warm.\n\nTea is calm."
    items = pa.table({"prompt": pa.array([prompt]), "response": [text]})
    cdr = DensityRatio("cdr", strong=hf_runner, weak=weak_runner)
    ev = json.loads(cdr.score(items)["evidence"][0].as_py())
    strong = hf_runner.logprobs([(prompt, text)])[0].value.token_logprobs
    weak = weak_runner.logprobs([(prompt, text)])[0].value.token_logprobs
    mask = np.array(hf_runner.encoder.newline_mask(text))
    assert mask.sum() >= 1 and ev["tokens"] == len(strong) - mask.sum()
    assert ev["strong_logprob"] == pytest.approx(np.sum(np.array(strong)[~mask]), abs=1e-6)
    assert ev["ratio"] == pytest.approx(np.sum(np.array(strong)[~mask]) - np.sum(np.array(weak)[~mask]), abs=1e-6)
    per_token = DensityRatio("cdr", strong=hf_runner, weak=weak_runner, per_token=True).score(items)
    assert per_token["score"][0].as_py() == pytest.approx(ev["ratio"] / ev["tokens"])
    # criteria go to the strong model only
    custom = json.loads(DensityRatio("cdr", strong=hf_runner, weak=weak_runner,
                                     criteria="Prefer calm, concise answers.").score(items)["evidence"][0].as_py())
    assert custom["weak_logprob"] == pytest.approx(ev["weak_logprob"]) and custom["strong_logprob"] != ev["strong_logprob"]


def test_vllm_scores_continuations_that_share_a_prefix_across_a_kv_block(vllm_runner, hf_runner):
    """Continuations sharing their first ~150 tokens: vLLM's prefix cache covers a whole block
    inside the continuation, whose log-probs it then does not compute; the backend must rerun
    those requests rather than fail or return wrong values."""
    ctx = [{"role": "user", "content": "Say something."}]
    shared = " ".join(["the quick brown fox jumps over the lazy dog"] * 16)
    conts = [shared + " and then it slept.", shared + " and then it ran away."]
    # one at a time: the second request finds the first one's blocks in the prefix cache
    got = [vllm_runner.logprobs([(ctx, c)])[0] for c in conts]
    ref = hf_runner.logprobs([(ctx, c) for c in conts])
    for g, r in zip(got, ref):
        assert g.value.n_tokens == r.value.n_tokens > 128
        assert np.allclose(g.value.token_logprobs, r.value.token_logprobs, atol=1e-3)
