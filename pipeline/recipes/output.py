"""What a recipe returns: a SignalResult (its pairs and the records it made none from, with the
reason) plus its stats for the manifest; and the helpers recipes share to build them."""
from __future__ import annotations

from dataclasses import dataclass, field

import json

import numpy as np
import pyarrow as pa

from pipeline.annotate.guided import Answer
from pipeline.recipes.chat import quote
from pipeline.schema import empty
from pipeline.signals.common import id_lists, pairs_table, unpaired_table

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


def dsat_anchored(turns: pa.Table, ok: list[int], chosen: list[str], generator: list[dict], extra: list[dict], *,
                  name: str, recipe_type: str, signal: str, annotator: str, chosen_origin: str) -> pa.Table:
    """Pairs anchored on a real answer that drew dissatisfaction (DRIFT, WildFeedback): rows `ok`
    of `dsat_turns`, each with its model-written chosen side. rejected = the logged answer,
    prompt = the conversation without the feedback, margin = weight = the DSAT confidence
    (score_rejected = -confidence, score_chosen = 0); evidence = the DSAT facts plus `extra`."""
    if not ok:
        return empty("raw_pairs")
    t = turns.take(pa.array(ok))
    conf = t["confidence"].to_numpy()
    evidence = [json.dumps({"recipe_type": recipe_type, "turn_index": r["turn_index"], "dsat_category": r["category"],
                            "dsat_confidence": r["confidence"], "dsat_rule": r["rule"],
                            "feedback": quote(r["feedback"]), **more}, ensure_ascii=False)
                for r, more in zip(t.to_pylist(), extra)]
    return pairs_table(
        len(ok), prompt=t["prompt"], chosen=pa.array(chosen, pa.string()), rejected=t["rejected"],
        score_chosen=0.0, score_rejected=-conf, margin=conf, source="conversations", signal=signal,
        annotator=annotator, weight=np.clip(conf, 0, 1), input_ids=id_lists(t["record_id"]), signal_value=conf,
        evidence=pa.array(evidence), recipe=name, chosen_origin=chosen_origin, rejected_origin="log",
        generator=pa.array([json.dumps(g) for g in generator]))
