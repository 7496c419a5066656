"""`plain_flow`: Prefect's `@flow` for flows whose parameters are plain JSON values (strings,
numbers, bools, lists, dicts). Prefect records a flow run's parameters after passing them through
FastAPI's `jsonable_encoder`, and importing FastAPI costs about 0.1 s of every run, a fortieth of
an incremental one. Values that are JSON already are recorded as they are; anything else still
goes through Prefect's encoder."""
from __future__ import annotations

import json
from typing import Any

from prefect import Flow


class PlainFlow(Flow):
    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        try:
            return json.loads(json.dumps(parameters, allow_nan=False))
        except (TypeError, ValueError):
            return super().serialize_parameters(parameters)


def plain_flow(**options):
    """`@flow(**options)` making a PlainFlow."""
    return lambda fn: PlainFlow(fn, **options)
