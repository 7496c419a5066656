"""User-generated content -> `ugc` rows: Stack Exchange post and comment rows, generic Q&A threads.

An accepted answer is named by its question (`AcceptedAnswerId`), which may come after the answer
or in another file; so normalizers emit `accepted_answers` links and the merge step resolves them."""
from __future__ import annotations

from .fields import Ctx, RecordError, type_name
from .htmltext import html_to_text

QUESTION, ANSWER = "1", "2"


def _qualify(ctx: Ctx, rec: dict, local_id: str) -> str:
    site = ctx.ident(rec, "site", default=None)
    return f"{site}/{local_id}" if site else local_id


def _body(ctx: Ctx, rec: dict) -> str:
    html = ctx.text(rec, "Body")
    return ctx.check_text(html_to_text(html), "Body (as text)")


def se_post(rec: dict, ctx: Ctx) -> dict:
    post_type = ctx.ident(rec, "PostTypeId")
    post_id = _qualify(ctx, rec, ctx.ident(rec, "Id"))
    row = {"post_id": post_id, "title": None, "score": ctx.integer(rec, "Score"), "accepted": False}
    out = {"ugc": [row]}
    if post_type == QUESTION:
        title = ctx.text(rec, "Title", default=None)
        row.update(kind="question", thread_id=post_id, parent_id=None, title=title, text=_body(ctx, rec))
        accepted = ctx.ident(rec, "AcceptedAnswerId", default=None)
        if accepted:
            out["accepted_answers"] = [{"question_id": post_id, "answer_id": _qualify(ctx, rec, accepted)}]
    elif post_type == ANSWER:
        parent = _qualify(ctx, rec, ctx.ident(rec, "ParentId"))
        row.update(kind="answer", thread_id=parent, parent_id=parent, text=_body(ctx, rec))
    else:
        raise RecordError("unknown_format", f"Stack Exchange post with PostTypeId {post_type!r}: "
                                            "only questions ('1') and answers ('2') are read")
    return out


def se_comment(rec: dict, ctx: Ctx) -> dict:
    local = ctx.ident(rec, "Id")
    return {"ugc": [{
        "post_id": _qualify(ctx, rec, f"comment/{local}"), "thread_id": None, "kind": "comment",
        "parent_id": _qualify(ctx, rec, ctx.ident(rec, "PostId")), "title": None,
        "text": ctx.text(rec, "Text"), "score": ctx.integer(rec, "Score", default=0), "accepted": False,
    }]}


def thread(rec: dict, ctx: Ctx) -> dict:
    """{"id"?, "title"?, "question", "score"?, "answers": [{"id"?, "text", "score", "accepted"?, "comments"?}]}"""
    qid = _qualify(ctx, rec, ctx.ident(rec, "id", default=ctx.record_id))
    rows = [{"post_id": qid, "thread_id": qid, "kind": "question", "parent_id": None,
             "title": ctx.text(rec, "title", default=None), "text": ctx.text(rec, "question"),
             "score": ctx.integer(rec, "score", default=0), "accepted": False}]
    seen: set[str] = set()
    for i, answer in enumerate(ctx.array(rec, "answers")):
        where = f"answers[{i}]"
        answer = ctx.object(answer, where)
        aid = f"{qid}/{ctx.ident(answer, 'id', where, default=f'a{i + 1}')}"
        if aid in seen:
            raise RecordError("duplicate_id", f"{where}.id: answer id {aid!r} appears twice in the thread")
        seen.add(aid)
        accepted = answer.get("accepted", False)
        if not isinstance(accepted, bool):
            raise RecordError("wrong_type", f"{where}.accepted: expected a boolean, got {type_name(accepted)}")
        rows.append({"post_id": aid, "thread_id": qid, "kind": "answer", "parent_id": qid, "title": None,
                     "text": ctx.text(answer, "text", where), "score": ctx.integer(answer, "score", where),
                     "accepted": accepted})
        for k, comment in enumerate(ctx.array(answer, "comments", where, default=[])):
            rows.append({"post_id": f"{aid}/c{k + 1}", "thread_id": None, "kind": "comment", "parent_id": aid,
                         "title": None, "text": ctx.check_text(comment, f"{where}.comments[{k}]"),
                         "score": 0, "accepted": False})
    return {"ugc": rows}
