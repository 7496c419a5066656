"""What a recipe returns: a SignalResult (its pairs and the records it made none from, with the
reason) plus its stats for the manifest; and the helpers recipes share to build them."""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.annotate.guided import Answer

from pipeline.signals.common import unpaired_table
from pipeline.signals.result import SignalResult


@dataclass
class RecipeOutput:
    result: SignalResult
    stats: dict = field(default_factory=dict)


def head(table: pa.Table, name: str, max_inputs: int | None) -> tuple[pa.Table, list[tuple[str, str]]]:
    """The first `max_inputs` rows, and an unpaired reason for the record of every row left out."""
    if max_inputs is None or table.num_rows <= max_inputs:
        return table, []
    rest = table.slice(max_inputs)["record_id"].to_pylist()
    return table.slice(0, max_inputs), [(r, f"{name}: beyond max_inputs {max_inputs}") for r in rest]


def output(pairs: pa.Table, reasons: list[tuple[str, str]], stats: dict) -> RecipeOutput:
    ids = pa.array([r for r, _ in reasons], pa.string())
    why = pa.array([w for _, w in reasons], pa.string())
    return RecipeOutput(SignalResult(pairs=pairs, unpaired=unpaired_table(ids, why, used=pairs["input_ids"])),
                        {**stats, "pairs": pairs.num_rows})


def failure_reason(name: str, step: str, answer: Answer) -> str:
    """The unpaired reason for a guided-JSON step that gave no value."""
    if answer.error.startswith("unparsable"):
        return f"{name}: {step} unparsable ({answer.error.removeprefix('unparsable: ')}; {len(answer.raw)} attempts)"
    return f"{name}: {step} failed, the model could not take it ({answer.error})"
