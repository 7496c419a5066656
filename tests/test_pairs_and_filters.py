"""Pair construction (ids, tie rule, merging) and each filter's decisions."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pair_rows import raw_pair, raw_table
from pipeline.config import CurateConfig, DedupConfig
from pipeline.columns import sorted_unique
from pipeline.filters import apply_filters
from pipeline.filters.dedup import _linked, dedup_prompts, exact_key
from pipeline.hashing import sha256_hex
from pipeline.pairs import build_pairs, finalize

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _no_semantic():
    cfg = CurateConfig().filters
    cfg.dedup.semantic = False
    return cfg


def test_tie_rule_drops_whitespace_equal_and_empty_sides():
    cands = build_pairs(raw_table([
        raw_pair("q1", "Same  answer\n", " Same answer", ids=["f:1"]),
        raw_pair("q2", "", "something", ids=["f:2"]),
        raw_pair("q3", "good answer", "bad answer", ids=["f:3"]),
    ]))
    pairs, lineage = finalize(cands)
    assert pairs.num_rows == 1 and pairs["chosen"][0].as_py()[0]["content"] == "good answer"
    dropped = {r["input_ids"][0]: r["decisions"][0]["reason"] for r in lineage.to_pylist() if not r["kept"]}
    assert dropped == {"f:1": "chosen equals rejected after whitespace normalization",
                       "f:2": "chosen or rejected is empty"}


def test_pair_id_is_a_content_hash_stable_across_runs_and_whitespace():
    a = build_pairs(raw_table([raw_pair("What is DPO?", "An algorithm.", "A fruit.")])).table
    b = build_pairs(raw_table([raw_pair("What is  DPO?", "An algorithm. ", "A fruit.", ids=["g:9"])])).table
    c = build_pairs(raw_table([raw_pair("What is DPO?", "A fruit.", "An algorithm.")])).table
    assert a["pair_id"][0] == b["pair_id"][0]
    assert a["pair_id"][0] != c["pair_id"][0]  # swapped sides is a different (flipped) pair
    assert a["prompt_id"][0] == c["prompt_id"][0]


def test_ids_are_the_sha256_of_the_normalized_texts_whatever_the_arrow_layout():
    pair = build_pairs(raw_table([raw_pair("What is  DPO?", " An algorithm.", "A fruit.")])).table
    joined = "\x1d".join(["user: What is DPO?", "assistant: An algorithm.", "assistant: A fruit."])
    assert pair["pair_id"][0].as_py() == hashlib.sha256(joined.encode()).hexdigest()
    texts = ["héllo", None, "", "x" * 5000, "abc"]
    want = [None if t is None else hashlib.sha256(t.encode()).hexdigest() for t in texts]
    column = pa.array(texts)
    assert sha256_hex(column).to_pylist() == want
    assert sha256_hex(column.slice(2)).to_pylist() == want[2:]  # an offset into the buffers
    assert sha256_hex(pa.chunked_array([column.slice(0, 2), column.slice(2)])).to_pylist() == want
    assert sha256_hex(column.cast(pa.large_string())).to_pylist() == want


def test_sorted_unique_is_numpys_unique_for_ids_and_any_strings():
    rng = np.random.default_rng(7)
    ids = [hashlib.sha256(str(k).encode()).hexdigest() for k in rng.integers(0, 3000, 10_000)]
    columns = {
        "ids (sorted as integers)": ids,
        "ids sharing their first 16 digits": ["0" * 16 + i[:48] for i in ids[:500]],
        "upper-case hex": [i.upper() for i in ids[:500]],
        "ids of two lengths": ids[:300] + [i[:40] for i in ids[300:600]],
        "any text": [str(w) for w in rng.choice(["b", "a", "ccc", "é", "", "ab"], 1000)],
    }
    for name, values in columns.items():
        want = np.unique(np.array(values, dtype=object), return_index=True, return_inverse=True, return_counts=True)
        for column in (pa.array(values), pa.chunked_array([pa.array(values[:7]), pa.array(values[7:])])):
            got = sorted_unique(column)
            assert all(np.array_equal(g, w) for g, w in zip(got, want)), name


def test_same_pair_from_two_records_is_one_pair_with_both_inputs():
    cands = build_pairs(raw_table([raw_pair("q", "yes", "no", ids=["a:1"]),
                                   raw_pair("q", "yes", "no", ids=["b:7"])]))
    assert cands.table.num_rows == 1
    assert cands.table["input_ids"][0].as_py() == ["a:1", "b:7"]


def test_quality_guard_and_margin_threshold_record_reasons():
    cands = build_pairs(raw_table([
        raw_pair("q1", "}{}{<>//--==", "a fine answer", ids=["f:1"]),
        raw_pair("q2", "a real answer", "another answer", margin=0.01, ids=["f:2"]),
        raw_pair("q3", "a real answer", "another answer", margin=0.5, ids=["f:3"]),
    ]))
    apply_filters(cands, _no_semantic())
    _, lineage = finalize(cands)
    by_id = {r["input_ids"][0]: r for r in lineage.to_pylist()}
    assert by_id["f:1"]["dropped_by"] == "quality" and "letters or digits" in by_id["f:1"]["decisions"][-1]["reason"]
    assert by_id["f:2"]["dropped_by"] == "margin" and by_id["f:2"]["decisions"][-1]["reason"] == "margin 0.01 < 0.05 for edit"
    assert by_id["f:3"]["kept"] and [d["filter"] for d in by_id["f:3"]["decisions"]] == [
        "tie_rule", "quality", "side_distance", "margin", "prompt_dedup", "per_prompt_cap"]


def test_side_distance_drops_a_rewrite_that_barely_changed_the_rejected_answer():
    """DRIFT's guard: a DSAT rewrite with one word of twenty-five changed is no preference; the
    edit signal (no threshold here) is not checked by this filter."""
    answer = ("The capital of Australia is Sydney, which is also its largest city and the seat of its "
              "federal parliament and government since the year 1901.")
    cands = build_pairs(raw_table([
        raw_pair("q1", answer.replace("Sydney", "Canberra"), answer, signal="dsat_rewrite", ids=["f:1"]),
        raw_pair("q2", "Canberra has been the capital since 1913.", answer, signal="dsat_rewrite", ids=["f:2"]),
        raw_pair("q3", answer.replace("Sydney", "Canberra"), answer, signal="edit", ids=["f:3"]),
        raw_pair("q4", " ".join(answer.split()[:12]), answer, signal="dsat_rewrite", ids=["f:4"]),  # a copy cut short
    ]))
    apply_filters(cands, _no_semantic())
    _, lineage = finalize(cands)
    by_id = {r["input_ids"][0]: r for r in lineage.to_pylist()}
    near = next(d for d in by_id["f:1"]["decisions"] if d["filter"] == "side_distance")
    assert by_id["f:1"]["dropped_by"] == "side_distance"
    assert near["reason"] == f"chosen-rejected token distance {1 / 25} < 0.05"
    assert by_id["f:2"]["kept"] and by_id["f:3"]["kept"]
    cut = next(d for d in by_id["f:4"]["decisions"] if d["filter"] == "side_distance")
    assert by_id["f:4"]["dropped_by"] == "side_distance" and cut["reason"] == "chosen-rejected token distance 0 < 0.05"
    assert next(d for d in by_id["f:3"]["decisions"] if d["filter"] == "side_distance")["reason"] == \
        "no side-distance threshold for this signal"


def test_per_prompt_cap_keeps_highest_margins():
    rows = [raw_pair("same prompt", f"chosen {i}", f"rejected {i}", margin=0.1 * (i + 1), ids=[f"f:{i}"])
            for i in range(6)]
    cands = build_pairs(raw_table(rows))
    cfg = _no_semantic()
    cfg.per_prompt_cap = 4
    apply_filters(cands, cfg)
    pairs, lineage = finalize(cands)
    assert sorted(np.round(pairs["margin"].to_pylist(), 2)) == [0.3, 0.4, 0.5, 0.6]
    capped = [r for r in lineage.to_pylist() if r["dropped_by"] == "per_prompt_cap"]
    assert len(capped) == 2 and all("> cap 4" in r["decisions"][-1]["reason"] for r in capped)


def test_exact_prompt_duplicates_keep_one_representative_group():
    cands = build_pairs(raw_table([
        raw_pair("What is a citra hop?", "a1", "b1", ids=["f:1"]),
        raw_pair("What is a citra hop?", "a2", "b2", ids=["f:2"]),
        raw_pair("what is a CITRA hop", "a3", "b3", ids=["f:3"]),
        raw_pair("How do I age a stout?", "a4", "b4", ids=["f:4"]),
    ]))
    apply_filters(cands, _no_semantic())
    pairs, lineage = finalize(cands)
    kept_prompts = {p[0]["content"] for p in pairs["prompt"].to_pylist()}
    assert kept_prompts == {"What is a citra hop?", "How do I age a stout?"}  # the group's representative survives
    dup = [r for r in lineage.to_pylist() if r["dropped_by"] == "prompt_dedup"]
    assert [r["input_ids"] for r in dup] == [["f:3"]]


def test_exact_key_is_lowercase_letters_and_digits_with_single_spaces_on_real_texts():
    texts = [json.loads(line)["instruction"] for line in (SAMPLES / "pairwise_pandalm_human.jsonl").open()]
    texts += ["  Tabs\tand\nnewlines -- and   runs ", "Ünïcödé, ‘quotes’ & symbols ©™!", "a\fb\rc\vd", "...", ""]
    lowered = pc.utf8_lower(pa.array(texts))
    # the definition, one step at a time: drop every non-letter non-digit non-space, collapse \s+
    want = pc.utf8_trim_whitespace(pc.replace_substring_regex(
        pc.replace_substring_regex(lowered, r"[^\p{L}\p{N}\s]", ""), r"\s+", " "))
    got = exact_key(pa.array(texts))
    assert got.to_pylist() == want.to_pylist()
    # \v is no RE2 space: it goes with the symbols
    assert got.to_pylist()[-5:] == ["tabs and newlines and runs", "ünïcödé quotes symbols", "a b cd", "", ""]


def test_semantic_dedup_with_real_embeddings(tmp_path):
    """Real all-MiniLM-L6-v2: a reworded prompt joins its original's group, unrelated ones don't,
    and the second run is served from the embedding cache."""
    prompts = ["What is a citra hop, and how does it differ from other hops?",
               "What is a citra hop and how is it different from other hops?",
               "Should we include sources in answers?",
               "Translate the article about dentistry into French."]
    cands = build_pairs(raw_table([raw_pair(p, f"good {i}", f"bad {i}", ids=[f"f:{i}"])
                                   for i, p in enumerate(prompts)]))
    alive, _ = cands.alive()
    stats = {}
    passed, reason = dedup_prompts(alive, DedupConfig(exact=True, semantic=True, threshold=0.9), tmp_path, stats)
    assert passed.sum() == 3
    dropped = [r for r, ok in zip(reason, passed) if not ok]
    assert len(dropped) == 1 and "cosine 0.9" in dropped[0]
    assert stats["embedding_cache"] == {"hits": 0, "misses": 4}
    dedup_prompts(alive, DedupConfig(threshold=0.9), tmp_path, stats)
    assert stats["embedding_cache"] == {"hits": 4, "misses": 0}


def test_semantic_links_merge_exact_groups_transitively():
    """Exact duplicates are one group by their key; a semantic link from any member joins the
    other's whole group (A = A' by text, A' ~ B by cosine: A, A', B are one group)."""
    group = _linked(np.array([0, 0, 1, 2, 1]), np.array([1]), np.array([2]))
    assert group[0] == group[1] == group[2] == group[4] != group[3]
    assert sorted(set(group.tolist())) == [0, 1]  # labels stay 0..k-1 (they index the representatives)


def test_semantic_only_dedup_with_a_single_prompt_passes_everything(tmp_path):
    cands = build_pairs(raw_table([raw_pair("only prompt", "a", "b", ids=["f:1"]),
                                   raw_pair("only prompt", "c", "d", ids=["f:2"])]))
    alive, _ = cands.alive()
    passed, _ = dedup_prompts(alive, DedupConfig(exact=False, semantic=True), tmp_path, {})
    assert passed.tolist() == [True, True]


def test_the_same_pair_from_several_records_is_one_pair_with_every_input():
    rows = [raw_pair("Q", "good  answer", "bad", ids=("a:1", "a:2")),
            raw_pair("other", "x", "y", ids=("b:1",)),
            raw_pair("Q", "good answer", "bad", margin=5.0, ids=("c:9", "a:1")),   # same pair, whitespace aside
            raw_pair("Q", "good answer\n", "bad", ids=("d:3",))]
    cands = build_pairs(raw_table(rows))
    table = cands.table.to_pylist()
    assert [r["input_ids"] for r in table] == [["a:1", "a:2", "c:9", "d:3"], ["b:1"]]  # first-seen order
    assert table[0]["margin"] == 1.0  # the first occurrence's scores


def test_length_bias_spearman_equals_scipys_with_ties():
    """The report ranks with Arrow (no scipy.stats import); ties share their mean rank as in scipy."""
    from scipy.stats import spearmanr

    from pipeline.filters.length_bias import spearman

    rng = np.random.default_rng(0)
    for n in (3, 50, 5000):
        margin = rng.integers(0, 4, n).astype(float)          # many ties, as real margins have
        length_diff = margin * 10 + rng.integers(-30, 30, n)
        assert abs(spearman(margin, length_diff) - spearmanr(margin, length_diff).statistic) < 1e-12
