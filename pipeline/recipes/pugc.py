"""PUGC: preference pairs from user-generated content (methods 1.4, S6). Community answers are
written for people, not for models, but they show what their authors think a good answer holds:

    document d       = a community answer with enough votes (min_doc_score) and a usable length
    question x       = the standalone reader question d answers, written by a model (the writer)
    filter           = the same model says whether d holds enough to answer x; only "yes" is kept
    samples          = N answers to x from the policy pi_t (T 0.8, nucleus)
    chosen, rejected = the best and the worst sample by a rubric judge that grades them against d
                       as reference text; all tied -> no pair

prompt = [user: x]. Every pair stores reference_doc_id (the answer's post_id) and domain (the
site its post id names), so a run can pick the content of one domain. The other ugc records
(questions, comments) are the UGC miner's to account for; this recipe gives a reason only for
the documents it looked at and left out."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.annotate.fence import fence
from pipeline.annotate.guided import ask_json
from pipeline.annotate.templates import load_template
from pipeline.config_recipes import Pugc
from pipeline.recipes.context import RecipeContext
from pipeline.recipes.output import RecipeOutput, failure_reason, head, output
from pipeline.recipes.ranking import sample_and_rank
from pipeline.signals.common import strings, user_prompt

QUESTION_TOKENS, CHECK_TOKENS = 128, 16   # a retry doubles them
QUESTION = {"type": "object", "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 300}},
            "required": ["question"], "additionalProperties": False}
CHECK = {"type": "object", "properties": {"answerable": {"type": "string", "enum": ["yes", "no"]}},
         "required": ["answerable"], "additionalProperties": False}
_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+", re.IGNORECASE)


def domain(post_id: str) -> str | None:
    """The site a post id names (`beer.stackexchange.com/4` -> `beer.stackexchange.com`); None
    for an id without one."""
    site, sep, _ = post_id.partition("/")
    return site if sep and _HOST.fullmatch(site) else None


def documents(ugc: pa.Table, spec: Pugc) -> tuple[pa.Table, list[tuple[str, str]], dict]:
    """The answers usable as documents, in input order; a reason for each other answer; counts."""
    answers = ugc.filter(pc.equal(ugc["kind"], "answer"))
    chars = pc.utf8_length(answers["text"]).to_numpy()
    score = answers["score"].to_numpy()
    short = chars < spec.min_doc_chars
    long = ~short & (chars > spec.max_doc_chars)
    low = ~short & ~long & (score < spec.min_doc_score)
    reasons = []
    for i, rid in enumerate(answers["record_id"].to_pylist()):
        if short[i]:
            reasons.append((rid, f"{spec.name}: document too short ({chars[i]} < {spec.min_doc_chars} chars)"))
        elif long[i]:
            reasons.append((rid, f"{spec.name}: document too long ({chars[i]} > {spec.max_doc_chars} chars)"))
        elif low[i]:
            reasons.append((rid, f"{spec.name}: document score {score[i]} below {spec.min_doc_score}"))
    counts = {"too_short": int(short.sum()), "too_long": int(long.sum()), "low_score": int(low.sum())}
    return answers.filter(pa.array(~(short | long | low))), reasons, counts


def chat(tpl: dict, **fields) -> list[dict]:
    """A writer prompt: the template's system text and its user text filled with fenced fields."""
    return [{"role": "system", "content": tpl["system"].strip()},
            {"role": "user", "content": tpl["user"].format(**fields)}]


def pugc(spec: Pugc, tables: dict[str, pa.Table], ctx: RecipeContext) -> RecipeOutput:
    ugc = tables["ugc"]
    docs, reasons, counts = documents(ugc, spec)
    docs, skipped = head(docs, spec.name, spec.max_inputs)
    reasons += skipped
    q_tpl = load_template("pugc_question", ("system", "user"), package="pipeline.recipes")
    c_tpl = load_template("pugc_check", ("system", "user"), package="pipeline.recipes")
    writer = ctx.runner(spec.writer)
    rows = docs.to_pylist()

    ctx.log(f"{spec.name}: {writer.ref.name} writes the reader question of {len(rows)} documents")
    asked = ask_json(writer, [chat(q_tpl, document=fence("document", r["text"])) for r in rows], QUESTION,
                     QUESTION_TOKENS, retries=2)
    reasons += [(r["record_id"], failure_reason(spec.name, "question writing", a))
                for r, a in zip(rows, asked) if a.value is None]
    written = [i for i, a in enumerate(asked) if a.value is not None]
    checks = ask_json(writer, [chat(c_tpl, question=fence("question", asked[i].value["question"]),
                                    document=fence("document", rows[i]["text"])) for i in written],
                      CHECK, CHECK_TOKENS, retries=2)
    kept, unanswerable = [], 0
    for i, a in zip(written, checks):
        if a.value is None:
            reasons.append((rows[i]["record_id"], failure_reason(spec.name, "answerability check", a)))
        elif a.value["answerable"] == "no":
            unanswerable += 1
            reasons.append((rows[i]["record_id"], f"{spec.name}: the writer says the document cannot answer its "
                                                  "question"))
        else:
            kept.append((i, a))

    # the pair uses the answer and, when it is in the table, the question of its thread
    q_rows = ugc.filter(pc.equal(ugc["kind"], "question"))
    thread_question = dict(zip(q_rows["post_id"].to_pylist(), q_rows["record_id"].to_pylist()))
    record_ids = [[rows[i]["record_id"], *filter(None, [thread_question.get(rows[i]["thread_id"])])] for i, _ in kept]
    questions = [asked[i].value["question"] for i, _ in kept]
    prompts = pa.table({"record_ids": pa.array(record_ids, pa.list_(pa.string())),
                        "prompt": user_prompt(pa.array(questions, pa.string())), "source": strings("ugc", len(kept)),
                        "reference": pa.array([rows[i]["text"] for i, _ in kept], pa.string())})
    templates = {tpl["version"]: tpl["hash"] for tpl in (q_tpl, c_tpl)}
    writer_of = {"model": writer.ref.name, "revision": writer.ref.revision, "backend": writer.kind,
                 "origin": ctx.origin(spec.writer)}
    evidence = [{"reference_doc_id": rows[i]["post_id"], "domain": domain(rows[i]["post_id"]),
                 "doc_score": rows[i]["score"], "question": q, "answerable_raw": a.raw[-1], "writer": writer_of,
                 "templates": templates} for (i, a), q in zip(kept, questions)]
    ranked = sample_and_rank(ctx, spec.name, "pugc", prompts, spec.n, spec.sampling, spec.scorer,
                             signal="ugc_reference", evidence=evidence)
    unparsable = sum(a.value is None and a.error.startswith("unparsable") for a in [*asked, *checks])
    stats = {"documents": len(rows), "inputs": len(rows), **counts, "unparsable": unparsable, "unanswerable": unanswerable,
             "questions_kept": len(kept), **ranked.stats}
    return output(ranked.pairs, reasons + ranked.unpaired, stats)
