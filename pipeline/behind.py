"""`Behind`: work handed to one background thread, run in the order it was handed over, while the
caller goes on (Arrow, Parquet and hashlib let go of the GIL). At most `depth` calls wait, so the
memory their arguments hold stays bounded. Leaving the block waits for them all and raises the
first error; when the block itself fails, they are still waited for, and its error is the one
raised."""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor


class Behind:
    def __init__(self, depth: int, name: str):
        self.depth, self.pending = depth, deque()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=name)

    def submit(self, fn, *args) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > self.depth:
            self.pending.popleft().result()

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.pool.shutdown(wait=True)
        if exc_type is None:
            while self.pending:
                self.pending.popleft().result()
