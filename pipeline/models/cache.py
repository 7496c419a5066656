"""The request cache: every model request's result, keyed by a content hash of what determines it.

One SQLite file in WAL mode per workspace. SQLite is made for this: many processes may read and
write it at once (writers queue on a lock, `busy_timeout` waits), each chunk of results is one
transaction, so a process killed midway leaves every chunk it finished and nothing half-written."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from pipeline.hashing import text_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,      -- sha256 of the canonical request (see request_key)
    kind TEXT NOT NULL,        -- generate | logprobs
    model TEXT NOT NULL,       -- model id @ revision, for `prefmill models cache` style queries
    result TEXT NOT NULL,      -- JSON
    created REAL NOT NULL
) WITHOUT ROWID;
"""


def request_key(kind: str, model: str, revision: str, params: dict, payload) -> str:
    """Hash of (kind, model id + revision, backend-independent params incl. seed, input)."""
    canonical = json.dumps({"kind": kind, "model": model, "revision": revision, "params": params,
                            "input": payload}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text_hash(canonical)


def request_seed(key: str) -> int:
    """A request's own sampling seed: derived from its key, so samples are reproducible per request
    and independent across prompts (one shared seed would correlate every prompt's samples)."""
    return int(key[:8], 16)


class RequestCache:
    """get_many / put_many over one SQLite file; safe to share across threads and processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def get_many(self, keys: list[str]) -> dict[str, object]:
        found: dict[str, object] = {}
        conn = self._conn()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            batch = unique[start:start + 500]
            marks = ",".join("?" * len(batch))
            for key, result in conn.execute(f"SELECT key, result FROM requests WHERE key IN ({marks})", batch):
                found[key] = json.loads(result)
        return found

    def put_many(self, kind: str, model: str, items: dict[str, object]) -> None:
        """Store results in one transaction; an existing key keeps its first result."""
        if not items:
            return
        now = time.time()
        rows = [(k, kind, model, json.dumps(v, ensure_ascii=False), now) for k, v in items.items()]
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM requests").fetchone()[0]
