"""The request cache: what its key depends on, and that concurrent processes can share it."""
import multiprocessing as mp

import pytest

from pipeline.models import Sampling
from pipeline.models.cache import RequestCache, request_key

CHAT = [{"role": "user", "content": "Name a red fruit."}]


def key(sampling=Sampling.make(), chat=CHAT, model="m", revision="r1", kind="generate"):
    return request_key(kind, model, revision, sampling.key(), chat)


def test_key_changes_with_everything_that_determines_the_result():
    base = key()
    assert key() == base
    assert key(sampling=Sampling.make(seed=1)) != base
    assert key(sampling=Sampling.make(temperature=0.5)) != base
    assert key(sampling=Sampling.make(n=2)) != base
    assert key(sampling=Sampling.make(json_schema={"type": "object"})) != base
    assert key(revision="r2") != base
    assert key(model="other") != base
    assert key(kind="logprobs") != base
    assert key(chat=[{"role": "user", "content": "Name a red fruit!"}]) != base


def test_key_ignores_spelling_of_the_same_request():
    # JSON whitespace and stop-list container type do not change the request; the order of a
    # schema's properties does (the grammar emits them in that order).
    a = Sampling.make(json_schema={"type": "object", "required": ["a"]}, stop=["\n"])
    b = Sampling.make(json_schema='{"type": "object",\n  "required": ["a"]}', stop=("\n",))
    assert key(sampling=a) == key(sampling=b)
    swapped = Sampling.make(json_schema={"properties": {"b": {}, "a": {}}})
    assert key(sampling=swapped) != key(sampling=Sampling.make(json_schema={"properties": {"a": {}, "b": {}}}))


def test_sampling_rejects_bad_values():
    for bad in ({"n": 0}, {"max_tokens": 0}, {"temperature": -1}, {"top_p": 0}):
        with pytest.raises(ValueError):
            Sampling.make(**bad)


def _writer(path, worker, count):
    cache = RequestCache(path)
    for i in range(count):
        cache.put_many("generate", "m", {f"k{worker}-{i}": {"completions": [{"text": f"{worker}/{i}"}]},
                                         "shared": {"completions": [{"text": f"first-{worker}"}]}})


def test_concurrent_processes_share_one_cache_without_loss(tmp_path):
    path = tmp_path / "requests.sqlite"
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = RequestCache(path)
    assert cache.count() == 4 * 50 + 1
    got = cache.get_many([f"k{w}-{i}" for w in range(4) for i in range(50)] + ["shared", "missing"])
    assert len(got) == 201 and "missing" not in got
    assert got["k3-49"] == {"completions": [{"text": "3/49"}]}
    assert got["shared"]["completions"][0]["text"].startswith("first-")  # first writer wins, no error
