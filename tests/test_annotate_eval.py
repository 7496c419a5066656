"""`prefmill eval-annotators`: human majority labels from the real PandaLM, LAMP and WQRM files,
the agreement metrics, and the command end to end with a real annotator."""
import json
from collections import Counter

import pytest

from pipeline.annotate.evaluate import agreement_metrics, human_items
from pipeline.config import SourcesConfig
from pipeline.sources import read_file
from cli_helpers import last_json, run
from annotate_items import SAMPLES


def test_pandalm_items_carry_the_majority_of_three_annotators():
    items = human_items(read_file(SAMPLES / "pairwise_pandalm_human.jsonl", SourcesConfig()).tables["judgments"])
    raw = [json.loads(line) for line in (SAMPLES / "pairwise_pandalm_human.jsonl").read_text().splitlines()]
    by_text = {}
    for r in raw:  # the majority computed here straight from the JSON, independently of the readers
        if not (isinstance(r.get("response1"), str) and isinstance(r.get("response2"), str)):
            continue  # malformed records are the reader's quarantine, not items
        votes = Counter(str(r[k]) for k in ("annotator1", "annotator2", "annotator3"))
        top, n = votes.most_common(1)[0]
        label = {"1": "a", "2": "b", "0": "tie"}[top] if n >= 2 else "tie"
        by_text[(r["response1"].strip(), r["response2"].strip())] = label
    checked = 0
    for row in items.to_pylist():
        a, b = row["response_a"].strip(), row["response_b"].strip()
        if (a, b) in by_text and (b, a) not in by_text and row["votes"] == 3:
            assert row["human"] == by_text[(a, b)]
            checked += 1
        elif (b, a) in by_text and (a, b) not in by_text and row["votes"] == 3:
            assert row["human"] == {"a": "b", "b": "a", "tie": "tie"}[by_text[(b, a)]]
            checked += 1
    assert checked > 300  # most of the 474 records are distinct pairs judged once by three people


def test_rankings_expand_to_pairs_and_limit_samples():
    lamp = human_items(read_file(SAMPLES / "lamp_expert_rankings.jsonl", SourcesConfig()).tables["judgments"])
    wqrm = human_items(read_file(SAMPLES / "wqrm_expert_rankings.jsonl", SourcesConfig()).tables["judgments"])
    assert lamp.num_rows >= 285 and wqrm.num_rows >= 47
    assert set(lamp["human"].to_pylist()) <= {"a", "b", "tie"}
    some = human_items(read_file(SAMPLES / "lamp_expert_rankings.jsonl", SourcesConfig()).tables["judgments"], limit=10)
    assert some.num_rows == 10 and set(some["response_a"].to_pylist()) <= set(lamp["response_a"].to_pylist())


def test_agreement_metrics():
    human = ["a", "a", "b", "b", "tie", "a"]
    verdict = ["a", "b", "b", "tie", "tie", None]
    p_a = [0.9, 0.2, 0.1, 0.4, 0.5, None]
    m = agreement_metrics(human, verdict, p_a)
    assert m["coverage"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(2 / 4)   # scored with a human winner: a, a, b, b -> right, wrong, right, wrong(tie)
    assert m["acc_p"] == pytest.approx(3 / 4)      # the tie leant to b (0.4)
    from sklearn.metrics import cohen_kappa_score
    assert m["kappa"] == pytest.approx(cohen_kappa_score(human[:5], verdict[:5], labels=["a", "b", "tie"]))


@pytest.mark.slow
def test_eval_annotators_command_on_real_files(tmp_path):
    proc = run("eval-annotators", str(SAMPLES / "pairwise_pandalm_human.jsonl"), str(SAMPLES / "wqrm_expert_rankings.jsonl"),
               "-a", "cdr_per_token", "--limit", "4", "--backend", "transformers", "-w", str(tmp_path), "--json")
    result = last_json(proc)
    rows = result["results"]
    assert [(r["file"], r["annotator"]) for r in rows] == [("pairwise_pandalm_human.jsonl", "cdr_per_token"),
                                                           ("wqrm_expert_rankings.jsonl", "cdr_per_token")]
    for r in rows:
        assert r["items"] == 4 and 0 <= r["coverage"] <= 1 and r["seconds_per_pair"] > 0
        assert r["accuracy"] is None or 0 <= r["accuracy"] <= 1
    assert "annotators vs humans" in proc.stdout
    assert result["annotators"][0]["weak"].startswith("SmolLM2-135M-Instruct-half@")
    bad = run("eval-annotators", str(SAMPLES / "wqrm_expert_rankings.jsonl"), "-a", "nope", "-w", str(tmp_path),
              check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr
