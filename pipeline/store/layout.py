"""Where a workspace keeps things, and how a version is named.

    WORKSPACE/catalog.duckdb
    WORKSPACE/datasets/NAME/vN/{pairs,lineage,quarantine,ledger,signals,version}.parquet + manifest.json
    WORKSPACE/datasets/NAME/vN/TABLE.K.parquet   more parts of a table (K = 1, 2, ...): an
                                                 incremental version shares its parent's parts
                                                 (hard links) and adds one
    WORKSPACE/datasets/NAME/.tmp-<uuid>/   a commit in progress (never listed, never read)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TABLES = ("pairs", "lineage", "quarantine", "ledger", "signals")  # the data tables of a version
REQUIRED_TABLES = ("pairs", "lineage", "quarantine", "ledger")    # signals may be omitted (written empty)
VERSION_FILE = "version.parquet"
MANIFEST_FILE = "manifest.json"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VERSION_DIR_RE = re.compile(r"v([1-9][0-9]*)")
PART_RE = re.compile(r"([a-z]+)(?:\.([1-9][0-9]*))?\.parquet")  # TABLE.parquet, TABLE.K.parquet
TMP_PREFIX = ".tmp-"
PAGE_FILE = "index.html"  # a dashboard's page inside its folder


class StoreError(Exception):
    """A user-facing store failure; the message says what is wrong and what to do."""


def part_name(table: str, k: int) -> str:
    return f"{table}.parquet" if k == 0 else f"{table}.{k}.parquet"


def table_files(vdir: Path, table: str) -> list[Path]:
    """The files holding `table` in a version folder, in order (usually just TABLE.parquet)."""
    found = ((PART_RE.fullmatch(p.name), p) for p in Path(vdir).glob(f"{table}*.parquet"))
    return [p for _, p in sorted((int(m.group(2) or 0), p) for m, p in found if m and m.group(1) == table)]


def check_name(dataset: str) -> str:
    if not isinstance(dataset, str) or not NAME_RE.fullmatch(dataset):
        raise StoreError(f"invalid dataset name {dataset!r}: use letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return dataset


@dataclass(frozen=True)
class VersionRef:
    """`name@3` is version 3 of dataset `name`; `name` (or `name@latest`) is its latest version."""
    dataset: str
    version: int | None = None

    @classmethod
    def parse(cls, ref: "str | VersionRef") -> "VersionRef":
        if isinstance(ref, VersionRef):
            return ref
        if not isinstance(ref, str):
            raise StoreError(f"a version reference is a string like 'name@3', got {ref!r}")
        name, sep, ver = ref.strip().rpartition("@")
        if not sep:
            return cls(check_name(ver))
        check_name(name)
        if ver == "latest":
            return cls(name)
        ver = ver[1:] if ver[:1] in ("v", "V") else ver
        if not ver.isdigit() or int(ver) < 1:
            raise StoreError(f"invalid version in {ref!r}: expected 'name@N' with N >= 1, or 'name' for the latest")
        return cls(name, int(ver))

    def __str__(self) -> str:
        return self.dataset if self.version is None else f"{self.dataset}@{self.version}"


def sql_literal(text: str) -> str:
    """A SQL string literal (for DuckDB paths and patterns)."""
    return "'" + text.replace("'", "''") + "'"


def sql_list(paths) -> str:
    """A SQL list of path literals (DuckDB's read_parquet takes one)."""
    return "[" + ", ".join(sql_literal(str(p)) for p in paths) + "]"


def workspace_path(workspace) -> Path:
    return Path(workspace).expanduser().resolve()


def datasets_dir(workspace) -> Path:
    return workspace_path(workspace) / "datasets"


def dataset_dir(workspace, dataset: str) -> Path:
    return datasets_dir(workspace) / check_name(dataset)


def version_dir(workspace, dataset: str, version: int) -> Path:
    return dataset_dir(workspace, dataset) / f"v{version}"


def dashboard_dir(workspace, dataset: str, version: int) -> Path:
    """Where a version's dashboard goes by default: beside the versions, never inside one (a version's
    folder holds exactly what its manifest lists)."""
    return workspace_path(workspace) / "dashboards" / check_name(dataset) / f"v{version}"


def dashboard_page(workspace, dataset: str, version: int) -> Path:
    """The page `curate` builds for a version (when the dashboard is on)."""
    return dashboard_dir(workspace, dataset, version) / PAGE_FILE


def catalog_path(workspace) -> Path:
    return workspace_path(workspace) / "catalog.duckdb"


def dataset_names(workspace) -> list[str]:
    root = datasets_dir(workspace)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and NAME_RE.fullmatch(p.name))


def versions_of(workspace, dataset: str) -> list[int]:
    """Committed version numbers, ascending. Temp folders of commits in progress are not versions."""
    ddir = dataset_dir(workspace, dataset)
    if not ddir.is_dir():
        return []
    found = (VERSION_DIR_RE.fullmatch(p.name) for p in ddir.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def latest_version(workspace, dataset: str) -> int | None:
    versions = versions_of(workspace, dataset)
    return versions[-1] if versions else None


def resolve_ref(workspace, ref: "str | VersionRef") -> tuple[VersionRef, Path]:
    """The concrete (dataset, version) a reference names, and its folder."""
    parsed = VersionRef.parse(ref)
    versions = versions_of(workspace, parsed.dataset)
    if not versions:
        known = ", ".join(dataset_names(workspace)) or "none"
        raise StoreError(f"unknown dataset {parsed.dataset!r} in {workspace_path(workspace)} "
                         f"(datasets: {known})")
    version = versions[-1] if parsed.version is None else parsed.version
    if version not in versions:
        raise StoreError(f"unknown version {parsed.dataset}@{version} "
                         f"(versions: {', '.join(map(str, versions))})")
    concrete = VersionRef(parsed.dataset, version)
    return concrete, version_dir(workspace, parsed.dataset, version)


def resolve(workspace, ref: "str | VersionRef") -> Path:
    """The folder of the version `ref` names; StoreError if there is none."""
    return resolve_ref(workspace, ref)[1]
