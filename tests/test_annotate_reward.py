"""Reward-model ensemble on real data: members trained on CPU from the shipped Stack Exchange vote
pairs and LAMP expert edits (mined by prefmill's own readers and miners), evaluated on pairs of
prompts they never saw; the LM member is a real Hugging Face reward model on disk."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.annotate.base import verdict_of
from pipeline.annotate.reward import RewardEnsemble
from pipeline.annotate.reward_cli import rm_app
from pipeline.annotate.reward_models import EmbeddingHeadRM, HFRewardModel, chat_ids, load_member
from pipeline.annotate.reward_train import (accuracy, pair_texts, split_pairs, train_embedding_rm,
                                            train_lm_rm)
from pipeline.config import CurateConfig
from pipeline.models.cache import RequestCache
from pipeline.pairs import build_pairs, finalize
from pipeline.signals import mine_edits, mine_ugc
from pipeline.sources import read_inputs

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)
LM_MAX_LENGTH = 256


@pytest.fixture(scope="module")
def real_pairs(samples) -> pa.Table:
    """Vote pairs (beer.SE, history.meta.SE with comments) and expert-edit pairs (LAMP)."""
    cfg = CurateConfig()
    batch = read_inputs([samples / f for f in ("se_beer_posts.jsonl", "se_history_meta_posts.jsonl",
                                               "se_history_meta_comments.jsonl", "lamp_edits.jsonl")], cfg.sources)
    raw = pa.concat_tables([mine_ugc(batch.tables["ugc"], cfg.signals.ugc).pairs,
                            mine_edits(batch.tables["edits"], cfg.signals.edits).pairs])
    pairs, _ = finalize(build_pairs(raw))
    assert pairs.num_rows > 400 and set(pairs["signal"].to_pylist()) == {"ugc_votes", "edit"}
    return pairs


@pytest.fixture(scope="module")
def split(real_pairs) -> tuple[pa.Table, pa.Table]:
    """(train, test): a quarter of the prompts (by prompt id) is never trained on."""
    is_test = pc.less(pc.utf8_slice_codeunits(real_pairs["prompt_id"], 0, 1), "4")
    return real_pairs.filter(pc.invert(is_test)), real_pairs.filter(is_test)


@pytest.fixture(scope="module")
def emb_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def minilm(split, emb_cache, tmp_path_factory) -> dict[int, dict]:
    root = tmp_path_factory.mktemp("minilm")
    return {s: train_embedding_rm(split[0], root / f"minilm-s{s}", seed=s, cache_dir=emb_cache) for s in SEEDS}


@pytest.fixture(scope="module")
def lm_meta(split, tmp_path_factory) -> dict:
    return train_lm_rm(split[0], tmp_path_factory.mktemp("lm") / "smollm2-s0", seed=0, max_pairs=200,
                       max_length=LM_MAX_LENGTH)


@pytest.fixture(scope="module")
def lm_member(lm_meta) -> HFRewardModel:
    return HFRewardModel(lm_meta["path"], max_length=LM_MAX_LENGTH)


@pytest.fixture(scope="module")
def rm_cache(tmp_path_factory) -> RequestCache:
    """Shared by the tests below, so the LM member runs once per distinct response (CPU budget)."""
    return RequestCache(tmp_path_factory.mktemp("rm-cache") / "requests.sqlite")


@pytest.fixture(scope="module")
def lm_heldout(split, lm_member) -> pa.Table:
    """The pairs the LM member held out, drawn again from its seed: the pairs it can take (both
    sides within max_length), then subsample, split by prompt, bootstrap."""
    train = split[0]
    prompts, chosen, rejected = pair_texts(train)
    tok = lm_member.loaded[1]
    fits = np.array([a is None and b is None for a, b in zip(chat_ids(tok, prompts, chosen, LM_MAX_LENGTH)[1],
                                                              chat_ids(tok, prompts, rejected, LM_MAX_LENGTH)[1])])
    return train.take(pa.array(split_pairs(train, 0, 0.2, 200, fits).heldout))


@pytest.fixture(scope="module")
def short_pairs(lm_heldout) -> pa.Table:
    """Pairs every member can score, as compare() items."""
    assert lm_heldout.num_rows >= 4
    _, chosen, rejected = pair_texts(lm_heldout)
    return pa.table({"prompt": lm_heldout["prompt"], "response_a": chosen, "response_b": rejected})


@pytest.fixture(scope="module")
def ensemble(minilm, lm_member, emb_cache, rm_cache) -> RewardEnsemble:
    return RewardEnsemble(members=[*(EmbeddingHeadRM(m["path"], cache_dir=emb_cache) for m in minilm.values()),
                                   lm_member], cache=rm_cache)


def items_of(pairs: pa.Table) -> pa.Table:
    """The distinct responses of pairs as pointwise items."""
    return pa.table({"prompt": pa.concat_arrays([pairs["prompt"].combine_chunks()] * 2),
                     "response": pa.concat_arrays([pairs[c].combine_chunks() for c in ("response_a", "response_b")])})


def heads(minilm) -> dict[int, np.ndarray]:
    return {s: EmbeddingHeadRM(m["path"]).weight for s, m in minilm.items()}


# (a) embedding-head members ---------------------------------------------------------------------

def test_seeds_give_different_members_and_each_seed_is_deterministic(minilm, split, emb_cache, tmp_path):
    w = heads(minilm)
    for s, t in [(0, 1), (0, 2), (1, 2)]:
        assert not np.allclose(w[s], w[t], atol=1e-3)
        assert minilm[s]["train_fingerprint"] != minilm[t]["train_fingerprint"]
    again = train_embedding_rm(split[0], tmp_path / "again", seed=1, cache_dir=emb_cache)
    assert np.array_equal(EmbeddingHeadRM(again["path"]).weight, w[1])
    assert {k: v for k, v in again.items() if k != "path"} == {k: v for k, v in minilm[1].items() if k != "path"}


def test_members_rank_unseen_real_pairs_above_chance(minilm, split, emb_cache):
    test = split[1]
    prompts, chosen, rejected = pair_texts(test)
    edit = np.array(test["signal"].to_pylist()) == "edit"
    deltas = []
    for s, meta in minilm.items():
        assert meta["heldout_pairs"] > 40 and meta["heldout_accuracy"] > 0.5
        member = EmbeddingHeadRM(meta["path"], cache_dir=emb_cache)
        delta = member.rewards(prompts, chosen) - member.rewards(prompts, rejected)
        deltas.append(delta)
        print(f"seed {s}: internal held-out {meta['heldout_accuracy']:.3f}; unseen test {accuracy(delta):.3f} "
              f"(edits {accuracy(delta[edit]):.3f}, votes {accuracy(delta[~edit]):.3f}, n={len(delta)})")
        assert accuracy(delta) > 0.55
        assert accuracy(delta[edit]) > 0.65   # expert edits are learnable from embeddings
    votes = RewardEnsemble(members=[EmbeddingHeadRM(m["path"], cache_dir=emb_cache) for m in minilm.values()]).compare(
        pa.table({"prompt": test["prompt"], "response_a": chosen, "response_b": rejected}))
    ens = np.array(votes["p_a"].to_pylist())
    print(f"3-seed ensemble vote accuracy on unseen test pairs: {accuracy(ens - 0.5):.3f}")
    assert accuracy(ens - 0.5) > 0.55


# (b) the LM member is a real Hugging Face reward model -------------------------------------------

def test_lm_member_is_a_hf_reward_model_scoring_its_fitted_head(lm_meta, lm_member, lm_heldout, rm_cache):
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModel, AutoModelForSequenceClassification

    from pipeline.models import resolve

    folder = lm_member.path
    model = AutoModelForSequenceClassification.from_pretrained(str(folder))
    assert type(model).__name__ == "LlamaForSequenceClassification" and model.config.num_labels == 1
    assert model.config.pad_token_id is not None
    assert isinstance(load_member(folder), HFRewardModel)
    assert lm_meta["train_unique"] >= 10 and lm_meta["heldout_pairs"] >= 3
    w = load_file(str(folder / "model.safetensors"))["score.weight"][0].astype(np.float64)

    # its held-out pairs, scored through the generic path, rank as the training run measured
    prompts, chosen, rejected = pair_texts(lm_heldout)
    r_c, r_r = lm_member.rewards(prompts, chosen, rm_cache), lm_member.rewards(prompts, rejected, rm_cache)
    assert accuracy(r_c - r_r) == pytest.approx(lm_meta["heldout_accuracy"])
    print(f"LM member: {lm_meta['train_unique']} pairs, held-out accuracy {lm_meta['heldout_accuracy']:.3f} "
          f"on {lm_meta['heldout_pairs']}")

    # independently: the base LM's final-norm hidden state of the last token, times the head
    tok = lm_member.loaded[1]
    base = AutoModel.from_pretrained(str(resolve().path)).eval()
    texts = [tok.apply_chat_template([*p, {"role": "assistant", "content": c}], tokenize=False)
             for p, c in zip(prompts[:3], chosen[:3])]
    with torch.inference_mode():
        feats = np.stack([base(**tok(t, add_special_tokens=False, return_tensors="pt")).last_hidden_state[0, -1].numpy()
                          for t in texts])
    np.testing.assert_allclose(feats @ w, r_c[:3], rtol=1e-3, atol=1e-3)


# (c) ensemble: z-normalization, aggregates, votes, labels ----------------------------------------

def test_ensemble_scores_are_aggregates_of_per_member_z(ensemble, short_pairs):
    items = items_of(short_pairs)
    out = ensemble.score(items)
    assert out["error"].null_count == items.num_rows and out["score"].null_count == 0
    ev = [json.loads(e) for e in out["evidence"].to_pylist()]
    names = [m.name for m in ensemble.members]
    z = np.array([[e["z"][n] for e in ev] for n in names])
    raw = np.array([[e["raw"][n] for e in ev] for n in names])
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-9)
    np.testing.assert_allclose(z, (raw - raw.mean(1, keepdims=True)) / raw.std(1, keepdims=True), atol=1e-9)
    field = lambda k: np.array([e[k] for e in ev])  # noqa: E731
    np.testing.assert_allclose(field("mean"), z.mean(0))
    np.testing.assert_allclose(field("median"), np.median(z, 0))
    np.testing.assert_allclose(field("std"), z.std(0))
    np.testing.assert_allclose(field("mean_minus_std"), z.mean(0) - 1.0 * z.std(0))
    np.testing.assert_allclose(field("min"), z.min(0))
    np.testing.assert_allclose(out["score"].to_numpy(), z.mean(0))
    for aggregate, lam, expect in [("min", 1.0, z.min(0)), ("median", 1.0, np.median(z, 0)),
                                   ("mean_minus_std", 0.5, z.mean(0) - 0.5 * z.std(0))]:
        other = RewardEnsemble(members=ensemble.members, aggregate=aggregate, lam=lam, cache=ensemble.cache).score(items)
        np.testing.assert_allclose(other["score"].to_numpy(), expect)
    assert ensemble.cost.items >= items.num_rows and ensemble.cost.seconds > 0
    described = ensemble.describe()
    assert described["type"] == "rm_ensemble" and len(described["members"]) == 4
    assert described["members"][-1]["training"]["type"] == "lm_head"


def test_ensemble_votes_strength_and_labels(ensemble, short_pairs):
    both = pa.concat_tables([short_pairs, short_pairs.select(["prompt", "response_b", "response_a"])
                             .rename_columns(["prompt", "response_a", "response_b"])])
    scored = ensemble.score(items_of(short_pairs))   # the same distinct responses: the same run
    ev = [json.loads(e) for e in scored["evidence"].to_pylist()]
    names = [m.name for m in ensemble.members]
    n = short_pairs.num_rows
    z = np.array([[e["z"][m] for e in ev] for m in names])
    delta = np.hstack([z[:, :n] - z[:, n:], z[:, n:] - z[:, :n]])
    mu = delta.mean(0)
    eps = float(np.median(np.abs(mu)))
    labelled = RewardEnsemble(members=ensemble.members, epsilon=eps, cache=ensemble.cache)
    out = labelled.compare(both)
    cmp = [json.loads(e) for e in out["evidence"].to_pylist()]
    np.testing.assert_allclose([c["strength_mu"] for c in cmp], mu, atol=1e-9)
    np.testing.assert_allclose([c["strength_sd"] for c in cmp], delta.std(0), atol=1e-9)
    np.testing.assert_allclose([c["vote"] for c in cmp], (delta > 0).mean(0))
    np.testing.assert_allclose(out["p_a"].to_numpy(), (delta > 0).mean(0))
    np.testing.assert_allclose([[c["delta"][m] for c in cmp] for m in names], delta, atol=1e-9)
    assert out["verdict"].to_pylist() == [verdict_of(v) for v in out["p_a"].to_pylist()]
    expect = np.where(mu < -eps, "flip", np.where(np.abs(mu) <= eps, "ambiguous", "keep"))
    labels = [c["label"] for c in cmp]
    assert labels == expect.tolist() and {"flip", "ambiguous", "keep"} <= set(labels)
    # swapping a and b mirrors the pair: a kept pair is a flipped one, votes complement
    assert [{"keep": "flip", "flip": "keep", "ambiguous": "ambiguous"}[x] for x in labels[:n]] == labels[n:]


# (d) failure modes ------------------------------------------------------------------------------

def test_empty_and_overlong_items_are_unscored_with_their_reason(ensemble, short_pairs, split):
    prompts = short_pairs["prompt"].to_pylist()
    longest = max(pair_texts(split[1])[1], key=len)
    items = pa.table({"prompt": pa.array(prompts[:4], short_pairs["prompt"].type),
                      "response": [short_pairs["response_a"][0].as_py(), "", longest,
                                   short_pairs["response_b"][3].as_py()]})
    out = ensemble.score(items)
    score, error = out["score"].to_pylist(), out["error"].to_pylist()
    assert score[0] is not None and score[3] is not None and error[0] is None and error[3] is None
    assert score[1] is None and error[1].startswith("empty_text: ")
    assert score[2] is None and error[2].startswith(f"context_overflow: {ensemble.members[-1].name}: ")
    raw = json.loads(out["evidence"][2].as_py())["raw"]
    assert raw[ensemble.members[-1].name] is None and all(raw[m.name] is not None for m in ensemble.members[:3])
    r, errs = ensemble.members[-1].evaluate(prompts[:4], items["response"].to_pylist(), ensemble.cache)
    assert np.isnan(r[[1, 2]]).all() and not np.isnan(r[[0, 3]]).any()
    assert errs[1].startswith("empty_text") and errs[2].startswith("context_overflow")
    pair = ensemble.compare(pa.table({"prompt": items["prompt"][:2], "response_a": items["response"][:2],
                                      "response_b": items["response"][1:3]}))
    assert pair["p_a"].to_pylist() == [None, None] and pair["verdict"].to_pylist() == [None, None]
    assert all(e.startswith("empty_text") for e in pair["error"].to_pylist())


# (e) cache ----------------------------------------------------------------------------------------

def test_second_run_is_served_from_the_request_cache(minilm, lm_meta, short_pairs, tmp_path):
    cache = RequestCache(tmp_path / "requests.sqlite")
    items = items_of(short_pairs.slice(0, 2))
    items = pa.concat_tables([items, pa.table({"prompt": items["prompt"][:1], "response": [""]})])
    n = items.num_rows

    def fresh() -> RewardEnsemble:  # members loaded from their folders, as a new process would
        return RewardEnsemble(members=[*(m["path"] for m in minilm.values()),
                                       HFRewardModel(lm_meta["path"], max_length=LM_MAX_LENGTH)], cache=cache)

    first = fresh()
    out1 = first.score(items)
    assert cache.count() == 4 * n and all(m.computed == n and m.cached == 0 for m in first.members)
    second = fresh()
    out2 = second.score(items)
    assert out2.equals(out1) and cache.count() == 4 * n
    assert all(m.computed == 0 and m.cached == n for m in second.members)
    assert "loaded" not in second.members[-1].__dict__   # the LM was not even loaded
    # what decides a reward besides the weights is in the key: another max_length is a new request
    other = HFRewardModel(lm_meta["path"], max_length=LM_MAX_LENGTH + 1)
    other.evaluate(items["prompt"].to_pylist()[-2:], items["response"].to_pylist()[-2:], cache)
    assert other.computed == 2 and cache.count() == 4 * n + 2


# (f) CLI ------------------------------------------------------------------------------------------

def test_cli_trains_members_and_rejects_bad_input(split, tmp_path):
    runner = CliRunner()
    pairs_file = tmp_path / "pairs.parquet"
    pq.write_table(split[0].slice(0, 60), pairs_file)
    result = runner.invoke(rm_app, ["train", str(pairs_file), "--out", str(tmp_path / "rm"), "-w", str(tmp_path / "ws"),
                                    "--seed", "0", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    members = json.loads(result.output.strip().splitlines()[-1])["members"]
    assert [m["seed"] for m in members] == [0, 1]
    for name in ("minilm-s0", "minilm-s1"):
        assert isinstance(load_member(tmp_path / "rm" / name), EmbeddingHeadRM)
    assert "reward-model members" in result.output
    # both seeds use the same 60 pairs: the second member read every embedding from the workspace cache
    assert len(list((tmp_path / "ws" / "cache" / "embeddings").rglob("*.parquet"))) == 1

    pq.write_table(split[0].select(["prompt", "chosen"]), tmp_path / "no_rejected.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    for bad in ([str(tmp_path / "missing.parquet")], [str(tmp_path / "no_rejected.parquet")],
                [str(tmp_path / "text.parquet")], [str(pairs_file), "--encoder", "no-such-encoder"]):
        result = runner.invoke(rm_app, ["train", *bad, "--out", str(tmp_path / "bad"), "-w", str(tmp_path / "ws")])
        assert result.exit_code == 2, (bad, result.output)
    assert not (tmp_path / "bad").exists()
