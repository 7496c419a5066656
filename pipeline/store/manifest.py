"""The manifest of a version: the caller's dataset-level facts, checked (the ledger must balance),
plus what the store adds (dataset, version, parent, created, files). Also the one-row
version.parquet that lets DuckDB list versions."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.schema import conform
from pipeline.store.layout import StoreError

STORE_KEYS = ("dataset", "version", "parent", "created", "files")  # set by the store, never by the caller
REQUIRED_KEYS = ("config_hash", "code_version")
DEFAULTS = {"flow_run_id": None, "config": {}, "inputs": [], "counts": {}, "stats": {}}
STATUSES = ("kept", "filtered", "quarantined")
LEDGER_KEYS = ("inputs", *STATUSES, "pairs")  # the ledger summary every report shows


def _plain(value):
    """numpy scalars, dates and paths as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def to_json(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False, default=_plain)


def _finite(value):
    """JSON has no NaN/Infinity: non-finite floats (e.g. a mean over nothing) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _reasons(ledger: pa.Table, status: str) -> dict[str, int]:
    """Reason counts, grouped by the stable part of a reason (details in parentheses dropped:
    'edits: typo-level edit (d=0.01 < 0.05)' counts as 'edits: typo-level edit'). The distinct
    reasons are counted first: there are few of them, and only they go through the regex."""
    rows = ledger.filter(pc.equal(ledger["status"], status))
    if not rows.num_rows:
        return {}
    counted = pc.value_counts(pc.fill_null(rows["reason"], ""))
    stable = pc.replace_substring_regex(counted.field("values"), r"\s*\(.*$", "")
    totals = pa.table({"reason": stable, "n": counted.field("counts")}).group_by("reason", use_threads=False).aggregate(
        [("n", "sum")]).to_pylist()
    return {c["reason"] or "unspecified": c["n_sum"] for c in sorted(totals, key=lambda c: -c["n_sum"])}


def ledger_from_table(ledger: pa.Table, pairs_rows: int) -> dict:
    """The ledger summary a version's manifest carries, computed from the ledger table."""
    counts = {s: 0 for s in STATUSES}
    for c in pc.value_counts(ledger["status"]).to_pylist():
        counts[c["values"]] = c["counts"]
    return {"inputs": ledger.num_rows, **counts, "pairs": pairs_rows,
            "filtered_reasons": _reasons(ledger, "filtered"),
            "quarantine_reasons": _reasons(ledger, "quarantined")}


def add_ledgers(a: dict, b: dict) -> dict:
    """The ledger summary of two disjoint sets of records (a parent version and an increment)."""
    out = {k: a[k] + b[k] for k in LEDGER_KEYS}
    for key in ("filtered_reasons", "quarantine_reasons"):
        total = dict(a.get(key, {}))
        for reason, n in b.get(key, {}).items():
            total[reason] = total.get(reason, 0) + n
        out[key] = dict(sorted(total.items(), key=lambda kv: -kv[1]))
    return out


def ledger_problems(summary: dict, ledger: pa.Table | None, pairs_rows: int | None,
                    actual: dict | None = None) -> list[str]:
    """Why a ledger does not balance; [] when it does. Shared by commit (refuse) and verify (report).
    `actual`: the ledger table's own summary, when the caller has it already."""
    if not isinstance(summary, dict):
        return [f"ledger must be an object with counts, got {type(summary).__name__}"]
    missing = [k for k in LEDGER_KEYS if not isinstance(summary.get(k), int)]
    if missing:
        return [f"ledger lacks integer counts for {missing}"]
    problems = []
    total = summary["kept"] + summary["filtered"] + summary["quarantined"]
    if summary["inputs"] != total:
        problems.append(f"ledger does not balance: inputs={summary['inputs']} but kept+filtered+quarantined="
                        f"{summary['kept']}+{summary['filtered']}+{summary['quarantined']}={total}")
    if pairs_rows is not None and summary["pairs"] != pairs_rows:
        problems.append(f"ledger says pairs={summary['pairs']} but pairs.parquet has {pairs_rows} rows")
    if ledger is not None:
        actual = actual or ledger_from_table(ledger, pairs_rows or 0)
        unknown = sorted(set(pc.unique(ledger["status"]).to_pylist()) - set(STATUSES))
        if unknown:
            problems.append(f"ledger table has unknown status values {unknown} (expected {list(STATUSES)})")
        for key in ("inputs", *STATUSES):
            if actual[key] != summary[key]:
                problems.append(f"ledger says {key}={summary[key]} but the ledger table has {actual[key]}")
    return problems


def prepare(dataset: str, manifest: dict, pairs_rows: int, ledger: pa.Table) -> dict:
    """Check the caller's manifest against the version's pair count and ledger (its status and
    reason columns); return a copy ready for the store to fill in version, parent, created and
    files. Raises StoreError when the ledger does not balance."""
    if not isinstance(manifest, dict):
        raise StoreError(f"manifest must be a dict, got {type(manifest).__name__}")
    if manifest.get("dataset") not in (None, dataset):
        raise StoreError(f"manifest names dataset {manifest['dataset']!r} but the commit is to {dataset!r}")
    missing = [k for k in REQUIRED_KEYS if not manifest.get(k)]
    if missing:
        raise StoreError(f"manifest lacks required keys {missing} (see schemas/manifest.yaml)")
    out = {"dataset": dataset, "version": None, "parent": None, "created": None}
    out.update({k: v for k, v in DEFAULTS.items()})
    out.update({k: v for k, v in manifest.items() if k not in STORE_KEYS})
    try:  # the manifest is kept exactly as manifest.json will hold it
        out = json.loads(to_json(_finite(out)))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"manifest is not JSON-serializable: {exc}") from exc
    actual = ledger_from_table(ledger, pairs_rows) if out.get("ledger") is None else None
    if actual is not None:
        out["ledger"] = actual
    problems = ledger_problems(out["ledger"], ledger, pairs_rows, actual)
    if problems:
        raise StoreError(f"refusing to commit {dataset}: " + "; ".join(problems))
    out["files"] = {}
    return out


def stamp(manifest: dict, version: int, parent: int | None) -> dict:
    return {**manifest, "version": version, "parent": parent,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def version_row(manifest: dict) -> pa.Table:
    """The one-row `manifest` table (version.parquet) that the catalog's `versions` view reads."""
    led = manifest["ledger"]
    row = {"dataset": manifest["dataset"], "version": manifest["version"], "parent": manifest["parent"],
           "created": manifest["created"], "flow_run_id": manifest.get("flow_run_id"),
           "config_hash": str(manifest["config_hash"]), "code_version": str(manifest["code_version"]),
           "inputs": led["inputs"], "kept": led["kept"], "filtered": led["filtered"],
           "quarantined": led["quarantined"], "pairs": led["pairs"], "manifest_json": to_json(manifest)}
    return conform("manifest", pa.Table.from_pylist([row]))
