"""Export of a committed version to Hugging Face `datasets` folders (trl, ultrafeedback, kto), the
dataset card, and the Hub push path (with the network faked, since none exists here)."""
from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import huggingface_hub  # noqa: E402
import pytest  # noqa: E402

from pipeline.store import StoreError, commit_version, export_version, query  # noqa: E402
from test_store_sample import build_tables, load_records  # noqa: E402


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    ws = tmp_path_factory.mktemp("export") / "ws"
    tables, manifest = build_tables(load_records())
    final = commit_version(ws, "pandalm", tables, manifest)
    return ws, final, tables["pairs"]


def _front_matter(card: str) -> str:
    assert card.startswith("---\n")
    return card.split("---\n")[1]


def test_export_trl(committed, tmp_path):
    ws, manifest, pairs = committed
    out = export_version(ws, "pandalm@1", tmp_path / "trl", fmt="trl")
    ds = datasets.load_from_disk(str(tmp_path / "trl"))
    assert ds.column_names == ["prompt", "chosen", "rejected"] == out["columns"]
    assert ds.num_rows == pairs.num_rows == out["rows"]
    row = ds[0]
    assert row["prompt"] == pairs["prompt"][0].as_py()
    assert [m["role"] for m in row["prompt"]] == ["user"]
    assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]
    assert row["chosen"] == pairs["chosen"][0].as_py() and row["rejected"] == pairs["rejected"][0].as_py()
    card = (tmp_path / "trl" / "README.md").read_text()
    assert "- dpo" in _front_matter(card) and "format: trl" in _front_matter(card)
    for name, facts in manifest["files"].items():
        assert facts["sha256"] in card, name
    embedded = json.loads(card.split("```json\n")[1].split("\n```")[0])
    assert embedded == manifest
    assert out["hub"] is None


def test_export_ultrafeedback(committed, tmp_path):
    ws, manifest, pairs = committed
    export_version(ws, "pandalm", tmp_path / "uf", fmt="ultrafeedback")
    ds = datasets.load_from_disk(str(tmp_path / "uf"))
    assert ds.column_names == ["prompt", "prompt_id", "chosen", "rejected", "messages", "score_chosen",
                               "score_rejected"]
    assert ds.num_rows == pairs.num_rows
    assert ds.features["prompt"].dtype == "string" and ds.features["score_chosen"].dtype == "float64"
    for i in (0, ds.num_rows - 1):
        row, src = ds[i], pairs.slice(i, 1).to_pylist()[0]
        assert row["prompt"] == src["prompt"][-1]["content"]
        assert row["prompt_id"] == src["prompt_id"]
        assert row["chosen"] == src["prompt"] + src["chosen"] == row["messages"]
        assert row["rejected"] == src["prompt"] + src["rejected"]
        assert (row["score_chosen"], row["score_rejected"]) == (src["score_chosen"], src["score_rejected"])
    assert "format: ultrafeedback" in (tmp_path / "uf" / "README.md").read_text()


def test_export_kto(committed, tmp_path):
    ws, manifest, pairs = committed
    export_version(ws, "pandalm", tmp_path / "kto", fmt="kto")
    ds = datasets.load_from_disk(str(tmp_path / "kto"))
    assert ds.column_names == ["prompt", "completion", "label"]
    assert ds.features["label"].dtype == "bool"
    # expected rows computed independently: one True row per chosen, one False per rejected, deduplicated
    rows = pairs.select(["prompt", "chosen", "rejected"]).to_pylist()
    key = json.dumps
    expected = []
    for r in rows:
        for completion, label in ((r["chosen"], True), (r["rejected"], False)):
            k = (key(r["prompt"]), key(completion), label)
            if k not in expected:
                expected.append(k)
    assert len(expected) < 2 * len(rows)  # the real sample repeats answers to the same prompt
    got = [(key(r["prompt"]), key(r["completion"]), r["label"]) for r in ds]
    assert got == expected
    assert sum(ds["label"]) == len({k for k in expected if k[2]})
    front = _front_matter((tmp_path / "kto" / "README.md").read_text())
    assert "- kto" in front and "format: kto" in front


def test_export_refuses_bad_targets_and_formats(committed, tmp_path):
    ws, _, _ = committed
    with pytest.raises(StoreError, match="unknown export format"):
        export_version(ws, "pandalm", tmp_path / "x", fmt="sharegpt")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        export_version(ws, "pandalm", tmp_path / "busy")
    export_version(ws, "pandalm", tmp_path / "again")
    with pytest.raises(StoreError, match="overwrite=True"):
        export_version(ws, "pandalm", tmp_path / "again")
    assert export_version(ws, "pandalm", tmp_path / "again", overwrite=True)["rows"] > 0
    with pytest.raises(StoreError, match="unknown version"):
        export_version(ws, "pandalm@9", tmp_path / "nine")


def test_export_of_a_damaged_version_is_refused(tmp_path):
    ws = tmp_path / "ws"
    commit_version(ws, "dmg", *build_tables(load_records()[:60]))
    (ws / "datasets/dmg/v1/notes.txt").write_text("added after commit")
    with pytest.raises(StoreError, match="does not verify.*unexpected file: notes.txt"):
        export_version(ws, "dmg", tmp_path / "out")


def test_export_of_a_version_without_pairs_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ties = [r for r in load_records() if r["annotator1"] == 0][:5]  # every record filtered as a tie
    assert commit_version(ws, "ties", *build_tables(ties))["ledger"]["pairs"] == 0
    with pytest.raises(StoreError, match="no pairs"):
        export_version(ws, "ties", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_push_to_hub_records_commit(committed, tmp_path, monkeypatch):
    """Fault-injection fake for an unreachable network: no network exists here, so the Hub calls
    (HfApi.create_repo, HfApi.upload_file, Dataset.push_to_hub) are replaced by fakes that return
    what the real ones return (a huggingface_hub.CommitInfo); the test checks what the store does
    with it: the commit sha and url land in the catalog's hub_pushes table."""
    ws, manifest, pairs = committed
    sha = "91c54ad1727ee830252e457677f467be0bfd8a57"
    calls = []

    def fake_create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs.get("private")))

    def fake_upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, **kwargs):
        calls.append(("upload_file", path_in_repo, path_or_fileobj.decode()))

    def fake_push(self, repo_id, **kwargs):
        calls.append(("push_to_hub", repo_id, kwargs.get("private"), self.num_rows))
        return huggingface_hub.CommitInfo(commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/{sha}",
                                          commit_message=kwargs.get("commit_message") or "", commit_description="",
                                          oid=sha)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", fake_upload_file)
    monkeypatch.setattr(datasets.Dataset, "push_to_hub", fake_push)
    out = export_version(ws, "pandalm@1", tmp_path / "hub", fmt="trl", push_to_hub="me/prefs")
    assert out["hub"] == {"repo_id": "me/prefs", "commit_sha": sha, "private": True,
                          "commit_url": f"https://huggingface.co/datasets/me/prefs/commit/{sha}"}
    assert [c[0] for c in calls] == ["create_repo", "upload_file", "push_to_hub"]
    assert calls[0] == ("create_repo", "me/prefs", True)
    assert calls[1][1] == "README.md" and manifest["files"]["pairs.parquet"]["sha256"] in calls[1][2]
    assert calls[2] == ("push_to_hub", "me/prefs", True, pairs.num_rows)
    pushes = query(ws, "SELECT dataset, version, repo_id, commit_sha, commit_url FROM hub_pushes").to_pylist()
    assert pushes == [{"dataset": "pandalm", "version": 1, "repo_id": "me/prefs", "commit_sha": sha,
                       "commit_url": out["hub"]["commit_url"]}]


def test_push_failure_is_a_store_error(committed, tmp_path, monkeypatch):
    """In offline mode the real client refuses to reach the Hub; that becomes a StoreError and no
    push is recorded. (Offline mode is forced here, whatever order the modules were imported in.)"""
    ws, _, _ = committed
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    before = query(ws, "SELECT count(*) AS n FROM hub_pushes").to_pylist()[0]["n"]
    with pytest.raises(StoreError, match="to me/prefs failed"):
        export_version(ws, "pandalm@1", tmp_path / "hub2", fmt="kto", push_to_hub="me/prefs")
    assert (tmp_path / "hub2" / "README.md").exists()  # the local export is complete
    assert query(ws, "SELECT count(*) AS n FROM hub_pushes").to_pylist()[0]["n"] == before
