"""Push an exported version to the Hugging Face Hub and remember the commit.

The card is uploaded first; `Dataset.push_to_hub` then merges its `dataset_info` / `configs` into
that README in the same commit as the Parquet shards, so the commit it returns pins both data and
card. That commit's sha goes into the catalog's `hub_pushes` table: load it back with
`load_dataset(repo_id, revision=commit_sha)`, never an unpinned revision (peers.md §11.4)."""
from __future__ import annotations

from pipeline.store.catalog import record_hub_push
from pipeline.store.layout import StoreError


def push(workspace, ds, card: str, repo_id: str, dataset: str, version: int, fmt: str, private: bool) -> dict:
    from huggingface_hub import HfApi

    message = f"prefmill {dataset}@{version} ({fmt})"
    try:
        api = HfApi()
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_file(path_or_fileobj=card.encode("utf-8"), path_in_repo="README.md", repo_id=repo_id,
                        repo_type="dataset", commit_message=f"{message}: dataset card")
        info = ds.push_to_hub(repo_id, private=private, commit_message=message)
    except Exception as exc:  # noqa: BLE001 - network, auth and Hub errors all end the push the same way
        raise StoreError(f"push of {dataset}@{version} to {repo_id} failed: {type(exc).__name__}: {exc} "
                         "(the local export is complete; log in with `hf auth login` and retry)") from exc
    # datasets returns huggingface_hub.CommitInfo: .oid is the commit sha, .commit_url its page
    sha, url = getattr(info, "oid", None), getattr(info, "commit_url", None)
    record_hub_push(workspace, dataset, version, repo_id, sha, url)
    return {"repo_id": repo_id, "commit_sha": sha, "commit_url": url, "private": private}
