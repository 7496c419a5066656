"""Export a version to a Hugging Face `datasets` folder (save_to_disk) in a training format, with a
dataset card that embeds the version's manifest; optionally push it to the Hub.

Formats (see reference/peers.md §11):
  trl            prompt, chosen, rejected: message lists (TRL conversational, explicit prompt)
  ultrafeedback  prompt (str, last user message), prompt_id, chosen/rejected (prompt + answer
                 messages), messages (= chosen), score_chosen, score_rejected
  kto            prompt, completion (message lists), label (bool): chosen -> True, rejected -> False,
                 identical (prompt, completion, label) rows kept once
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import yaml

from pipeline.store.layout import PART_RE, StoreError, resolve_ref, sql_list, table_files
from pipeline.store.manifest import LEDGER_KEYS
from pipeline.store.verify import verify_version
from pipeline.store.versions import read_manifest

# the version's pair files in order (an incremental version has several parts), `ord` numbering their rows
PAIRS = ("(SELECT *, row_number() OVER (ORDER BY file_index, file_row_number) AS ord "
         "FROM read_parquet({paths}, file_row_number = true, hive_partitioning = false))")
LAST_USER = "coalesce(list_filter(prompt, lambda m: m.role = 'user')[-1].content, prompt[-1].content, '')"
FORMATS = {
    "trl": "SELECT prompt, chosen, rejected FROM {src} ORDER BY ord",
    "ultrafeedback": f"SELECT {LAST_USER} AS prompt, prompt_id, list_concat(prompt, chosen) AS chosen, "
                     "list_concat(prompt, rejected) AS rejected, list_concat(prompt, chosen) AS messages, "
                     "score_chosen, score_rejected FROM {src} ORDER BY ord",
    "kto": "WITH sides AS ("
           " SELECT prompt, chosen AS completion, true AS label, ord, 0 AS side FROM {src}"
           " UNION ALL"
           " SELECT prompt, rejected AS completion, false AS label, ord, 1 AS side FROM {src})"
           " SELECT prompt, completion, label FROM sides"
           " QUALIFY row_number() OVER (PARTITION BY prompt, completion, label ORDER BY ord, side) = 1"
           " ORDER BY ord, side",
}
TAGS = {"trl": ["dpo", "trl", "preference"], "ultrafeedback": ["dpo", "ultrafeedback", "preference"],
        "kto": ["kto", "trl", "unpaired-preference"]}
DESCRIPTIONS = {
    "trl": "TRL conversational preference format with an explicit prompt: `prompt`, `chosen`, `rejected` "
           "are lists of `{role, content}` messages (DPOTrainer, RewardTrainer).",
    "ultrafeedback": "The HuggingFaceH4/ultrafeedback_binarized schema: `prompt` (str), `prompt_id`, "
                     "`chosen` / `rejected` (full conversations), `messages`, `score_chosen`, `score_rejected`.",
    "kto": "TRL unpaired preference format: `prompt`, `completion` (message lists) and `label` (bool); "
           "each pair gives a desirable (chosen) and an undesirable (rejected) row (KTOTrainer, BCO).",
}


def format_table(pairs_paths: list[Path], fmt: str) -> pa.Table:
    """The rows of the pair files `pairs_paths` in export format `fmt`, computed in DuckDB."""
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    sql = FORMATS[fmt].format(src=PAIRS.format(paths=sql_list(pairs_paths)))
    with duckdb.connect() as con:
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"cannot read {', '.join(map(str, pairs_paths))}: {exc} (run verify)") from exc


def dataset_card(manifest: dict, fmt: str, rows: int, columns: list[str]) -> str:
    name, version = manifest["dataset"], manifest["version"]
    front = {"pretty_name": f"{name} v{version}", "tags": ["prefmill", *TAGS[fmt]],
             "task_categories": ["text-generation"],
             "prefmill": {"dataset": name, "version": version, "format": fmt,
                          "config_hash": manifest.get("config_hash"), "code_version": manifest.get("code_version"),
                          "pairs_sha256": manifest.get("files", {}).get("pairs.parquet", {}).get("sha256")}}
    parts = sorted((n for n in manifest.get("files", {}) if (m := PART_RE.fullmatch(n)) and m.group(1) == "pairs"),
                   key=lambda n: int(PART_RE.fullmatch(n).group(2) or 0))
    if len(parts) > 1:  # an incremental version: its pairs are in several files
        front["prefmill"]["pairs_parts_sha256"] = [manifest["files"][n]["sha256"] for n in parts]
    ledger = manifest.get("ledger", {})
    ledger_rows = "\n".join(f"| {k} | {ledger.get(k)} |"
                             for k in LEDGER_KEYS)
    file_rows = "\n".join(f"| {n} | {f.get('rows')} | {f.get('bytes')} | `{f.get('sha256')}` |"
                          for n, f in sorted(manifest.get("files", {}).items()))
    return f"""---
{yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()}
---

# {name} v{version}

Preference data curated by prefmill. Format **{fmt}**: {DESCRIPTIONS[fmt]}

{rows} rows; columns: {", ".join(f"`{c}`" for c in columns)}.
Config hash `{manifest.get("config_hash")}`, code version `{manifest.get("code_version")}`,
created {manifest.get("created")}, parent version {manifest.get("parent") or "none"}.

## Ledger

Every input record is kept, filtered (with the filter's reason) or quarantined (with the error):

| | records |
|---|---|
{ledger_rows}

## Files of the source version

| file | rows | bytes | sha256 |
|---|---|---|---|
{file_rows}

## Version manifest

```json
{json.dumps(manifest, indent=2, ensure_ascii=False, default=str)}
```
"""


def _prepare_target(to: Path, overwrite: bool) -> None:
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        is_export = to.is_dir() and (to / "state.json").is_file() and (to / "dataset_info.json").is_file()
        if not (overwrite and is_export):
            raise StoreError(f"export target {to} exists and is not empty"
                             + ("; pass --overwrite (overwrite=True) to replace a previous export" if is_export else ""))
        shutil.rmtree(to)
    to.parent.mkdir(parents=True, exist_ok=True)


def export_version(workspace, ref, to: Path, fmt: str = "trl", push_to_hub: str | None = None,
                   private: bool = True, overwrite: bool = False) -> dict:
    """Save version `ref` as a `datasets` folder at `to` in format `fmt` (trl, ultrafeedback, kto),
    with a README.md dataset card; with `push_to_hub=REPO_ID` also push it (private by default) and
    record the Hub commit in the catalog's hub_pushes table. Returns what was written."""
    from datasets import Dataset  # import lazily: `datasets` is slow to import

    concrete, vdir = resolve_ref(workspace, ref)
    problems = verify_version(workspace, concrete)  # the card vouches for these files' hashes
    if problems:
        raise StoreError(f"{concrete} does not verify; not exporting it: " + "; ".join(problems))
    manifest = read_manifest(workspace, concrete)
    table = format_table(table_files(vdir, "pairs"), fmt)
    if not table.num_rows:  # datasets 5.x also writes zero-row folders that load_from_disk cannot read
        raise StoreError(f"{concrete} has no pairs; nothing to export")
    to = Path(to).expanduser().resolve()
    _prepare_target(to, overwrite)
    ds = Dataset.from_dict({name: table[name] for name in table.column_names})
    ds.save_to_disk(str(to))
    card = dataset_card(manifest, fmt, ds.num_rows, ds.column_names)
    (to / "README.md").write_text(card, encoding="utf-8")
    result = {"dataset": concrete.dataset, "version": concrete.version, "format": fmt, "path": str(to),
              "rows": ds.num_rows, "columns": ds.column_names, "card": str(to / "README.md"), "hub": None}
    if push_to_hub:
        from pipeline.store.hub import push
        result["hub"] = push(workspace, ds, card, push_to_hub, concrete.dataset, concrete.version, fmt, private)
    return result
