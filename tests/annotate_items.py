"""Real judged pairs for annotator tests: PandaLM items read by the project's own reader and
grouped with their human majority label (pipeline.annotate.evaluate.human_items)."""
from pathlib import Path

import pyarrow as pa

from pipeline.annotate.evaluate import human_items
from pipeline.config import SourcesConfig
from pipeline.schema import MESSAGE
from pipeline.sources import read_file

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
MESSAGES = pa.list_(MESSAGE)


def pandalm_items(n: int, short: bool = True) -> pa.Table:
    """The first n PandaLM pairs with two non-empty responses (the shortest prompts if `short`,
    to keep CPU scoring fast)."""
    items = human_items(read_file(SAMPLES / "pairwise_pandalm_human.jsonl", SourcesConfig()).tables["judgments"])
    rows = [r for r in items.to_pylist() if r["response_a"].strip() and r["response_b"].strip()]
    if short:
        rows.sort(key=lambda r: len(r["prompt"][0]["content"]) + len(r["response_a"]) + len(r["response_b"]))
    return pa.Table.from_pylist(rows[:n], schema=items.schema)


def pointwise(items: pa.Table) -> pa.Table:
    """Each pair's two responses as pointwise items (prompt, response)."""
    return pa.table({"prompt": pa.concat_arrays([items["prompt"].combine_chunks()] * 2),
                     "response": pa.concat_arrays([items["response_a"].combine_chunks(),
                                                   items["response_b"].combine_chunks()])})


def with_responses(items: pa.Table, a: list[str] | None = None, b: list[str] | None = None) -> pa.Table:
    out = items
    for name, values in (("response_a", a), ("response_b", b)):
        if values is not None:
            out = out.set_column(out.schema.get_field_index(name), name, pa.array(values, pa.string()))
    return out
