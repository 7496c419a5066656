"""WildFeedback-style pairs (methods 1.3, S4). For every user turn the dissatisfaction
classifier labels DSAT:

    preference = what a model (the extractor) reads from the request, the answer, the user's
                 dissatisfied reply and up to two later user turns: what this user wants from an
                 answer, plus a checklist of yes/no criteria a good answer meets (guided JSON, T 0)
    chosen     = what the generator (the policy, or a stronger model) writes for the conversation
                 when told that preference
    rejected   = y_dsat, the real answer that drew the dissatisfaction (origin `log`)
    prompt     = c, the conversation up to the request, *without* the feedback

The checklist goes into the evidence for user-grounded judging (the rubric and pairwise judges
take it as a per-item `checklist` column). A stronger generator makes chosen easy to tell from
rejected by style alone: the S18 separability probe reports that. margin = weight = the DSAT
turn's confidence, as in DRIFT."""
from __future__ import annotations

import time

import pyarrow as pa

from pipeline.annotate.base import row_error
from pipeline.annotate.fence import fence
from pipeline.annotate.guided import ask_json, request_text
from pipeline.annotate.templates import load_template
from pipeline.config_recipes import WildFeedback
from pipeline.recipes.chat import with_system
from pipeline.recipes.context import RecipeContext, sampling_of
from pipeline.recipes.inputs import dsat_turns
from pipeline.recipes.output import RecipeOutput, dsat_anchored, failure_reason, head, output

EXTRACT_TOKENS = 400  # a preference and a checklist as JSON; a retry doubles it


def preference_schema(max_checklist: int) -> dict:
    text = lambda most: {"type": "string", "minLength": 1, "maxLength": most}  # noqa: E731
    return {"type": "object",
            "properties": {"user_preference": text(400),
                           "checklist": {"type": "array", "items": text(200), "minItems": 1,
                                         "maxItems": max_checklist}},
            "required": ["user_preference", "checklist"], "additionalProperties": False}


def extraction_chat(tpl: dict, turn: dict, max_checklist: int) -> list[dict]:
    """The extractor's prompt: the request, the answer, the user's reply and what they said next,
    each fenced as data."""
    later = "\n\n".join(fence(f"followup {k}", t) for k, t in enumerate(turn["followups"], 1))
    user = tpl["user"].format(request=fence("request", request_text(turn["prompt"])),
                              answer=fence("answer", turn["rejected"]), feedback=fence("user reply", turn["feedback"]),
                              followups_block=tpl["followups_block"].format(followups=later) if later else "")
    return [{"role": "system", "content": tpl["system"].format(max_checklist=max_checklist).strip()},
            {"role": "user", "content": user}]


def wildfeedback(spec: WildFeedback, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    turns, skipped = head(dsat_turns(tables["conversations"], ctx.conversations, followups=2), spec.name,
                          spec.max_inputs)
    ask_tpl = load_template("wildfeedback_preference", ("system", "user", "followups_block"),
                            package="pipeline.recipes")
    answer_tpl = load_template("wildfeedback_answer", ("system",), package="pipeline.recipes")
    rows = turns.to_pylist()
    extractor, generator = ctx.runner(spec.extractor), ctx.runner(spec.generator)
    sampling, origin = sampling_of(spec.sampling), ctx.origin(spec.generator)

    began = time.perf_counter()
    ctx.log(f"{spec.name}: {extractor.ref.name} states the preference behind {len(rows)} dissatisfied turns")
    answers = ask_json(extractor, [extraction_chat(ask_tpl, r, spec.max_checklist) for r in rows],
                       preference_schema(spec.max_checklist), EXTRACT_TOKENS, retries=2)
    reasons = list(skipped)
    got = [i for i, a in enumerate(answers) if a.value is not None]
    reasons += [(r["record_id"], failure_reason(spec.name, "preference extraction", a))
                for r, a in zip(rows, answers) if a.value is None]

    instruction = answer_tpl["system"]
    chats = [with_system(rows[i]["prompt"], instruction.format(preference=answers[i].value["user_preference"]))
             for i in got]
    ctx.log(f"{spec.name}: {origin} answers {len(chats)} conversations given the user's preference")
    results = generator.generate(chats, sampling)
    seconds = time.perf_counter() - began
    ok, chosen, gens = [], [], []
    for i, result in zip(got, results):
        if result.error is not None:
            reasons.append((rows[i]["record_id"], f"{spec.name}: the generator could not take the conversation "
                                                  f"({row_error(result)})"))
            continue
        ok.append(i)
        chosen.append(result.value[0].text)
        gens.append({"chosen": ctx.generated(generator, sampling, result, 0, origin),
                     "extractor": {"origin": ctx.origin(spec.extractor), "model": extractor.ref.name,
                                   "revision": extractor.ref.revision, "backend": extractor.kind,
                                   "template": ask_tpl["version"], "template_hash": ask_tpl["hash"],
                                   "attempts": len(answers[i].raw)}})
    stats = {"dsat_turns": turns.num_rows + len(skipped), "inputs": turns.num_rows, "extracted": len(got),
             "unparsable": sum(a.value is None and a.error.startswith("unparsable") for a in answers),
             "answered": len(ok), "seconds": round(seconds, 3)}
    templates = {tpl["version"]: tpl["hash"] for tpl in (ask_tpl, answer_tpl)}
    extra = [{"user_preference": answers[i].value["user_preference"], "checklist": answers[i].value["checklist"],
              "templates": templates} for i in ok]
    pairs = dsat_anchored(turns, ok, chosen, gens, extra, name=spec.name, recipe_type="wildfeedback",
                          signal="dsat_preference", annotator="model:preference_extraction", chosen_origin=origin)
    return output(pairs, reasons, stats)
