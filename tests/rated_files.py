"""Rated-candidate files built from real samples, for the rated reader and the ratings signal:

* UltraFeedback raw format from the LAMP expert rankings (real prompts, three real responses each,
  ranked by a professional writer): fine-grained_score = 3, 2, 1 from best to worst, overall_score
  = twice that;
* the generic prompt + candidates form from PandaLM (instruction + input, two real responses each
  scored by the number of the three human annotators who preferred it; equal votes are real ties,
  and six records really hold the JSON value `true` as a response).

`inject_faults` then breaks known candidates and adds bad lines, and returns what each should
become, so tests can check every injected fault by its id."""
import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def lamp_as_ultrafeedback() -> list[dict]:
    out = []
    for line in (SAMPLES / "lamp_expert_rankings.jsonl").read_text().splitlines():
        r = json.loads(line)
        rank = {label: i for i, label in enumerate(r["ranking_best_to_worst"])}
        n = len(r["ranking_best_to_worst"])
        out.append({"source": "lamp", "instruction": r["instruction"], "completions": [
            {"model": c["category"], "response": c["text"], "fine-grained_score": float(n - rank[c["label"]]),
             "overall_score": float(2 * (n - rank[c["label"]])),
             "annotations": {"helpfulness": {"Rating": str(n - rank[c["label"]]), "Rationale": r["annotator"]}}}
            for c in r["responses"]]})
    return out


def pandalm_as_candidates() -> list[dict]:
    out = []
    for line in (SAMPLES / "pairwise_pandalm_human.jsonl").read_text().splitlines():
        r = json.loads(line)
        votes = [r["annotator1"], r["annotator2"], r["annotator3"]]
        prompt = r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")
        out.append({"prompt": prompt, "candidates": [
            {"response": r["response1"], "score": votes.count(1), "model": "pandalm-candidate-1"},
            {"response": r["response2"], "score": votes.count(2)}]})
    return out


# (line index, candidate index, how to break it, error kind, words the message must contain)
CANDIDATE_FAULTS = [
    (0, 1, lambda c: c.update({"fine-grained_score": None}), "missing_field", "completions[2].fine-grained_score' is null"),
    (1, 0, lambda c: c.update({"fine-grained_score": "N/A"}), "wrong_type", "expected a number, got string ('N/A')"),
    (2, 2, lambda c: c.pop("fine-grained_score"), "missing_field", "completions[3].fine-grained_score' is missing"),
    (3, 1, lambda c: c.update({"fine-grained_score": True}), "wrong_type", "expected a number, got boolean"),
    (4, 0, lambda c: c.pop("response"), "missing_field", "completions[1].response' is missing"),
    (5, 1, lambda c: c.update({"response": "   "}), "empty_text", "completions[2].response is empty"),
]
BAD_LINES = [  # (text, error kind)
    ('{"instruction": "cut off", "completions": [{"response": ', "invalid_json"),
    ('[1, 2, 3]', "not_an_object"),
    ('{"conversations": [{"from": "human", "value": "hi"}]}', "unknown_format"),
    ('{"instruction": "no candidates", "completions": []}', "missing_field"),
    ('{"instruction": "", "completions": [{"response": "a", "fine-grained_score": 1}]}', "empty_text"),
    ('{"instruction": "x", "completions": "not a list"}', "wrong_type"),
]


def inject_faults(records: list[dict]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """JSONL lines with CANDIDATE_FAULTS applied and BAD_LINES (plus a blank line) appended, and
    the expected quarantine {record_id suffix 'LINE#K' or 'LINE': (kind, message part)}."""
    records = json.loads(json.dumps(records))
    expected = {}
    for i, k, brk, kind, words in CANDIDATE_FAULTS:
        brk(records[i]["completions"][k])
        expected[f"{i + 1}#{k + 1}"] = (kind, words)
    lines = [json.dumps(r) for r in records] + ["", "   \t  "]  # blank lines are no records
    for text, kind in BAD_LINES:
        lines.append(text)
        expected[str(len(lines))] = (kind, "")
    return lines, expected


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
