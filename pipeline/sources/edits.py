"""Texts and a human's edit of them -> `edits` rows: LAMP, IteraTeR R3, generic {context, original, edited}."""
from __future__ import annotations

import re

from .fields import Ctx, RecordError
from .messages import prompt_messages

R3_PROMPT = "Revise the following text to improve it:\n\n"
_DEPTH = re.compile(r"^rev_depth_(\d+)$")
_LAMP_WRITER = re.compile(r"^(W\d+)_reannotation_")   # the three LAMP re-annotating writers


def lamp(rec: dict, ctx: Ctx) -> dict:
    edit_id = ctx.ident(rec, "id")
    writer = _LAMP_WRITER.match(edit_id)
    return {"edits": [{
        "edit_id": edit_id, "prompt": [{"role": "user", "content": ctx.text(rec, "instruction")}],
        "original": ctx.text(rec, "preedit"), "edited": ctx.text(rec, "postedit"),
        "editor": writer.group(1) if writer else None,
    }]}


def r3(rec: dict, ctx: Ctx) -> dict:
    """One row per revision depth whose doc has the model's proposal and the human's decision."""
    annotator = ctx.ident(rec, "_annotator", default=None)
    rows = []
    depths = sorted((int(m.group(1)), key) for key in rec if (m := _DEPTH.match(key)))
    for depth, key in depths:
        doc = ctx.object(rec[key], key).get("doc")
        if doc is None:
            continue
        doc = ctx.object(doc, f"{key}.doc")
        if doc.get("after_revision") is None or doc.get("after_human_evaluation") is None:
            ctx.counters["r3_depths_not_evaluated"] += 1
            continue
        where = f"{key}.doc"
        doc_id = ctx.ident(doc, "doc_id", where)
        rows.append({
            "edit_id": f"{annotator or 'r3'}:{doc_id}:depth{depth}",
            "prompt": [{"role": "user", "content": R3_PROMPT + ctx.text(doc, "before_revision", where)}],
            "original": ctx.text(doc, "after_revision", where),
            "edited": ctx.text(doc, "after_human_evaluation", where),
            "editor": annotator,
        })
    if not rows:
        raise RecordError("missing_field", f"no rev_depth_k.doc has both after_revision and after_human_evaluation "
                                           f"(depths present: {', '.join(k for _, k in depths)})")
    return {"edits": rows}


def generic(rec: dict, ctx: Ctx) -> dict:
    return {"edits": [{
        "edit_id": ctx.ident(rec, "id", default=ctx.record_id),
        "prompt": prompt_messages(ctx, ctx.get(rec, "context"), "context"),
        "original": ctx.text(rec, "original"), "edited": ctx.text(rec, "edited"),
        "editor": ctx.ident(rec, "editor", default=None),
    }]}
