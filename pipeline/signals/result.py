from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.schema import empty


@dataclass
class SignalResult:
    pairs: pa.Table = field(default_factory=lambda: empty("raw_pairs"))
    unpaired: pa.Table = field(default_factory=lambda: empty("unpaired"))
    signals: pa.Table = field(default_factory=lambda: empty("signals"))
