"""Small, valid records of every input format, and helpers to write crafted input files."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from pipeline.config import SourcesConfig

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def cfg(**overrides) -> SourcesConfig:
    return SourcesConfig(**overrides)


SHAREGPT = {"id": "sg1", "conversations": [{"from": "human", "value": "What is DPO?"},
                                           {"from": "gpt", "value": "Direct preference optimization."}]}
CHAT = {"id": "c1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]}]}
WILDCHAT = {"conversation_hash": "wc1", "conversation": [
    {"role": "user", "content": "Translate 'cat' to French", "language": "English"},
    {"role": "assistant", "content": "chat", "language": "French"}]}
SE_QUESTION = {"site": "q.example.com", "Id": "10", "PostTypeId": "1", "AcceptedAnswerId": "12", "Score": "5",
               "Title": "How?", "Body": "<p>How do I <code>x</code>?</p><pre><code>x = 1\ny = 2\n</code></pre>"}
SE_ANSWER = {"site": "q.example.com", "Id": "12", "PostTypeId": "2", "ParentId": "10", "Score": "7",
             "Body": "<p>First.</p><p>Second paragraph.</p>"}
SE_COMMENT = {"site": "q.example.com", "Id": "3", "PostId": "12", "Score": "1", "Text": "Thanks, that worked."}
THREAD = {"id": "t1", "title": "Best tea?", "question": "Which tea is best?",
          "answers": [{"text": "Green tea.", "score": 4, "accepted": True, "comments": ["Agreed!"]},
                      {"id": "x", "text": "Black tea.", "score": 1}]}
LAMP_EDIT = {"id": "W3_reannotation_9", "instruction": "Write about a picnic.", "preedit": "The sun shone brightly.",
             "postedit": "Sun.", "source": "gpt4o"}
R3 = {"_annotator": "ann9", "doc_no": 1,
      "rev_depth_0": {"doc": {"doc_id": "d1-depth-1", "before_revision": "Teh text."}},
      "rev_depth_1": {"doc": {"doc_id": "d1-depth-1", "before_revision": "Teh text.", "after_revision": "The txt.",
                              "after_human_evaluation": "The text."}},
      "rev_depth_2": {"doc": {"doc_id": "d1-depth-1", "before_revision": "The text.", "after_revision": "A text."}}}
EDIT = {"id": "e1", "context": [{"role": "user", "content": "Summarize it."}], "original": "Long summary.",
        "edited": "Short one."}
PANDALM = {"idx": 1, "instruction": "Add numbers.", "input": "2+2", "response1": "4", "response2": "5",
           "annotator1": 1, "annotator2": 1, "annotator3": 0}
PAIRWISE = {"prompt": "Say hi", "response_a": "hi", "response_b": "bye", "label": ["a", "tie", 2],
            "annotator": ["u1", "u2", "u3"]}
LAMP_RANKING = {"annotator": "cgreer", "instruction": "Write.", "item_id": "i1",
                "responses": [{"label": "Response 1", "text": "one"}, {"label": "Response 2", "text": "two"},
                              {"label": "Response 3", "text": "three"}],
                "ranking_best_to_worst": ["Response 3", "Response 1", "Response 2"]}
WQRM = {"id": "w1", "genre": "fiction", "instruction": {"plot": "A cat travels.", "voice": "first person", "word_count": 50},
        "first_draft": {"candidate": "draft one"}, "random_cot": {"candidate": "draft two"},
        "best_cot": {"candidate": "draft three"},
        "annotations": [{"first_draft": "Least Preferred Writing Option", "random_cot": "Second Favorite Writing Option",
                         "best_cot": "Most Preferred Writing Option"}]}
PROMPT = {"id": "p1", "prompt": "Name a prime number."}
PROMPT_CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                            {"role": "user", "content": "Tell me a joke."}]}

ALL = [SHAREGPT, CHAT, WILDCHAT, SE_QUESTION, SE_ANSWER, SE_COMMENT, THREAD, LAMP_EDIT, R3, EDIT, PANDALM, PAIRWISE,
       LAMP_RANKING, WQRM, PROMPT]


def line(record) -> bytes:
    return json.dumps(record).encode()


def write_lines(path: Path, lines: list, compress: bool = False) -> Path:
    """Write JSONL; each item is a record (dumped as JSON) or raw bytes written as they are."""
    data = b"\n".join(item if isinstance(item, bytes) else line(item) for item in lines) + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def rows(batch, table: str) -> list[dict]:
    return batch.tables[table].to_pylist()


def quarantined(batch) -> list[dict]:
    return batch.quarantine.to_pylist()
