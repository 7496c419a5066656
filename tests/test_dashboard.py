"""The per-version dashboard on the real sample data: the numbers of every SQL file against the
version's own Parquet files (read with pyarrow, not with the dashboard's SQL), the page the real
`prefmill curate` built opened in Debian's headless chromium (no console errors, every chart drawn,
no network asked for, a screenshot kept in test-artifacts/), a comparison of two versions whose
differences are known, and the Prefect artifacts the flow published."""
import asyncio
import json
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from browser import open_page
from cli_helpers import last_json, run
from conftest import ROOT
from dashboards.queries import QUERIES_DIR, query_names, run_queries
from pipeline.store import VersionRef, commit_version
from test_store_sample import build_tables, load_records

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "test-artifacts"
CHARTS = {"chart-funnel", "chart-pairs-by", "chart-scores", "chart-length", "chart-quarantine"}


def _table(version_path: str, name: str):
    return pq.read_table(Path(version_path) / f"{name}.parquet")


@pytest.fixture(scope="module")
def sample_v1(curated):
    ws, first, _ = curated
    return ws, first, run_queries(ws, VersionRef("samples", 1))


def test_funnel_accounts_for_every_input_stage_by_stage(sample_v1):
    ws, first, data = sample_v1
    ledger = _table(first["path"], "ledger")
    filtered = [r for r in ledger.to_pylist() if r["status"] == "filtered"]
    by_stage = Counter(r["reason"].split(":")[0] for r in filtered)
    steps = data["funnel"]
    assert steps[0] == {"stage": "quarantined", "kind": "quarantine", "removed": first["quarantined"],
                        "remaining": first["inputs"] - first["quarantined"]}
    assert {s["stage"]: s["removed"] for s in steps[1:]} == dict(by_stage)
    assert steps[-1]["remaining"] == first["kept"]  # the funnel ends at the ledger's kept records
    # pair filters come after the signal stages, in the order the pipeline applies them
    kinds = [s["kind"] for s in steps]
    assert kinds == sorted(kinds, key=["quarantine", "signal", "filter"].index)
    assert [s["stage"] for s in steps if s["kind"] == "filter"] == ["tie_rule", "prompt_dedup", "per_prompt_cap"]


def test_pairs_lengths_duplicates_and_quarantine_match_the_version_files(sample_v1):
    ws, first, data = sample_v1
    pairs = _table(first["path"], "pairs").to_pylist()
    manifest = json.loads((Path(first["path"]) / "manifest.json").read_text())
    by_signal = {r["value"]: r["pairs"] for r in data["pairs_by"] if r["dimension"] == "signal"}
    assert by_signal == manifest["stats"]["pairs_by_signal"]
    assert {r["value"]: r["pairs"] for r in data["pairs_by"] if r["dimension"] == "source"} == \
        dict(Counter(p["source"] for p in pairs))

    def chars(side):
        return sum(len(m["content"]) for m in side)

    for row in data["length_bias"]:
        mine = [p for p in pairs if p["signal"] == row["signal"]]
        longer = sum(chars(p["chosen"]) > chars(p["rejected"]) for p in mine) / len(mine)
        assert row["pairs"] == len(mine) and row["share_chosen_longer"] == pytest.approx(longer, abs=1e-4)
    assert len(data["length_points"]) == len(pairs)  # under the 3,000-point sample cap

    lineage = _table(first["path"], "lineage")
    dropped = pc.sum(pc.equal(lineage["dropped_by"], "prompt_dedup")).as_py()
    assert dropped > 0 and sum(c["duplicate_pairs"] for c in data["near_duplicates"]) == dropped
    kept_prompts = {p["prompt_id"][:12] for p in pairs}
    assert all(c["representative_prompt"] for c in data["near_duplicates"] if c["representative"] in kept_prompts)

    quarantine = Counter(_table(first["path"], "quarantine")["error_kind"].to_pylist())
    assert {r["error_kind"]: r["records"] for r in data["quarantine_reasons"]} == dict(quarantine)
    scored = {(r["series"], r["metric"]): 0 for r in data["score_histograms"]}
    for r in data["score_histograms"]:
        scored[(r["series"], r["metric"])] += r["pairs"]
    assert scored[("human_pairwise · human", "margin")] == by_signal["human_pairwise"]
    signals_sampled = Counter(r["signal"] for r in data["sample_pairs"])
    assert signals_sampled == {s: min(3, n) for s, n in by_signal.items()}


def test_every_sql_file_runs_in_a_plain_duckdb_client(curated):
    ws, _, _ = curated
    con = duckdb.connect(str(ws / "catalog.duckdb"), read_only=True)
    con.execute("SET VARIABLE dataset = 'samples'")
    con.execute("SET VARIABLE version = 1")
    names = query_names()
    assert len(names) >= 10
    for name in names:
        rows = con.sql((QUERIES_DIR / f"{name}.sql").read_text()).fetchall()
        assert rows or name == "annotator_agreement", f"{name}.sql returned nothing on the sample version"


def test_the_page_curate_built_renders_in_chromium(curated):
    ws, first, _ = curated
    page_file = Path(first["dashboard"])
    assert page_file == ws / "dashboards" / "samples" / "v1" / "index.html"
    with open_page(page_file) as page:
        charts = page.evaluate("""Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({
            id: d.id, svg: d.querySelectorAll('.main-svg').length, traces: (d.data || []).length,
            marks: d.querySelectorAll('.point, .bars path, .trace path').length}))""")
        assert {c["id"] for c in charts} == CHARTS
        for c in charts:
            assert c["svg"] > 0 and c["traces"] > 0 and c["marks"] > 0, c
        # every legend lies inside its chart (a legend pushed out of view hides what the colours mean)
        legends = page.evaluate("""Array.from(document.querySelectorAll('.plotly-graph-div')).flatMap(d => {
            const box = d.getBoundingClientRect();
            return Array.from(d.querySelectorAll('g.legend')).map(l => {
                const r = l.getBoundingClientRect();
                return {id: d.id, inside: r.top >= box.top && r.bottom <= box.bottom && r.left >= box.left
                                          && r.right <= box.right, entries: l.querySelectorAll('.traces').length};
            });
        })""")
        assert {lg["id"] for lg in legends} >= {"chart-scores", "chart-length"}
        assert all(lg["inside"] and lg["entries"] for lg in legends), legends
        funnel = page.evaluate("document.getElementById('chart-funnel').data[0].x")
        assert funnel[0] == first["inputs"] and funnel[-1] == first["kept"]
        cards = page.locator("#headline .card .n").all_inner_texts()
        assert cards == [f"{first[k]:,}" for k in ("inputs", "kept", "filtered", "quarantined", "pairs")]
        assert page.locator("#sample .pair").count() >= 4
        assert "No model annotator ran" in page.locator("#annotators").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-samples-v1.png"), full_page=True)
    assert (ARTIFACTS / "dashboard-samples-v1.png").stat().st_size > 50_000


def test_compare_shows_the_known_changes_between_two_versions(tmp_path):
    records = load_records()
    ws = tmp_path / "ws"
    base, manifest = build_tables(records)
    commit_version(ws, "cmp", base, manifest)
    flip, rescore = {3, 5, 8}, {10, 11}
    changed, manifest = build_tables(records, flip=flip, rescore=rescore)
    commit_version(ws, "cmp", changed, manifest)
    out = last_json(run("dashboard", "cmp@2", "--compare", "cmp@1", "--out", str(tmp_path / "board"),
                        "--workspace", str(ws), "--json"))
    with open_page(Path(out["path"])) as page:
        table = page.locator("#compare table").first
        rows = dict(zip(table.locator("tbody tr td:nth-child(1)").all_inner_texts(),
                        table.locator("tbody tr td:nth-child(2)").all_inner_texts()))
        assert page.evaluate("document.getElementById('chart-compare').data.length") == 2
    flipped_here = sum(1 for r in records if r["idx"] in flip and isinstance(r["response1"], str)
                       and isinstance(r["response2"], str) and r["annotator1"] != 0)
    assert int(rows["flipped"]) == flipped_here > 0
    assert int(rows["changed"]) == len(rescore)
    assert int(rows["added"]) == int(rows["removed"]) == flipped_here


def test_dashboard_of_an_unknown_version_fails_clearly(curated):
    ws, _, _ = curated
    proc = run("dashboard", "samples@9", "--workspace", str(ws), check=False)
    assert proc.returncode == 1 and "unknown version samples@9 (versions: 1, 2)" in proc.stderr


def _artifacts(flow_run_id: str) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    return {a.key: a.data if isinstance(a.data, (list, dict)) else json.loads(a.data) if a.type == "table" else a.data
            for a in asyncio.run(read())}


def test_curate_publishes_a_summary_and_a_dashboard_link_as_prefect_artifacts(curated, tmp_path):
    ws, first, _ = curated
    manifest = json.loads((Path(first["path"]) / "manifest.json").read_text())
    arts = _artifacts(manifest["flow_run_id"])
    summary = {r["metric"]: r["value"] for r in arts["prefmill-samples-summary"]}
    assert {k: int(summary[k]) for k in ("inputs", "kept", "filtered", "quarantined", "pairs")} == \
        {k: first[k] for k in ("inputs", "kept", "filtered", "quarantined", "pairs")}
    assert summary["dashboard"] == first["dashboard"]
    assert Path(first["dashboard"]).as_uri() in arts["prefmill-samples-dashboard"]

    # with the dashboard turned off the summary is still published, and says so
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join((ROOT / "data" / "samples" / "pairwise_pandalm_human.jsonl").read_text().splitlines()[:30]))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("dashboard: {enabled: false}\nfilters: {dedup: {semantic: false}}\n")
    done = last_json(run("curate", str(small), "-d", "off", "-c", str(cfg), "-w", str(tmp_path / "ws"), "--json"))
    assert done["dashboard"] is None and not (tmp_path / "ws" / "dashboards").exists()
    flow_run = json.loads((Path(done["path"]) / "manifest.json").read_text())["flow_run_id"]
    arts = _artifacts(flow_run)
    assert set(arts) == {"prefmill-off-summary"}
    rows = {r["metric"]: r["value"] for r in arts["prefmill-off-summary"]}
    assert rows["dashboard"] == "not built" and int(rows["pairs"]) == done["pairs"]
