"""PII scrubbing: what must be replaced, and what must be left alone."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from pipeline.schema import MESSAGE
from pipeline.sources import pii


def scrub(text: str) -> tuple[str, Counter]:
    counts: Counter = Counter()
    return pii.scrub(pa.array([text]), counts)[0].as_py(), counts


@pytest.mark.parametrize("text, expected, kind", [
    ("write to john.doe+x@mail.example.co.uk today", "write to [EMAIL] today", "email"),
    ("Call 555-123-4567 now", "Call [PHONE] now", "phone"),
    ("office (415) 555-2671.", "office [PHONE].", "phone"),
    ("ring +44 20 7946 0958", "ring [PHONE]", "phone"),
    ("Tel: 06 12 34 56 78", "Tel: [PHONE]", "phone"),
    ("server at 81.2.69.160 is down", "server at [IP] is down", "ip"),
    ("v6 2a00:1450:4001:80b::200e here", "v6 [IP] here", "ip"),
    ("pay with 4111 1111 1111 1111 please", "pay with [CARD] please", "card"),
    ("pay with 4111-1111-1111-1111", "pay with [CARD]", "card"),
    ("stripe test 4242424242424242", "stripe test [CARD]", "card"),
    ("amex 3782 822463 10005", "amex [CARD]", "card"),
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx123", "OPENAI_API_KEY=[SECRET]", "secret"),
    ("token ghp_" + "a1" * 18, "token [SECRET]", "secret"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]", "secret"),
    ('api_key = "3f9a2b7c4d1e8f6a5b0c9d2e7f4a1b3c"', 'api_key = "[SECRET]"', "secret"),
    ("Authorization: Bearer abcdef0123456789abcdef0123", "Authorization: Bearer [SECRET]", "secret"),
])
def test_replaced(text, expected, kind):
    out, counts = scrub(text)
    assert out == expected
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", [
    "version 3.11.7", "Python 3.11.7 was released in 1999", "it costs $1,234.56", "on 2023-01-15 at 12:30:45",
    "card 4111111111111112 fails Luhn",                # 16 digits, invalid check digit
    "order 1234567890123", "tweet status/450629277763899392", "hex 34 35 01 06 29 01 02 04 10 0c 43 14",
    "localhost 127.0.0.1, lan 192.168.1.10, docs 203.0.113.5", "Chrome/110.0.0.0 Safari", "items[29::30]",
    "std::vector<int>", "ISBN 978-0-306-40615-7", "token = tokenizer_from_pretrained",
    "numbers 100 200 3000", "x = a + 1234567", "1.2.3.4.5",
])
def test_left_alone(text):
    out, counts = scrub(text)
    assert out == text
    assert not counts


def test_counts_several_per_text_and_nulls():
    counts: Counter = Counter()
    out = pii.scrub(pa.array(["a@b.io and c@d.io, 555-123-4567", None, "clean"]), counts)
    assert out.to_pylist() == ["[EMAIL] and [EMAIL], [PHONE]", None, "clean"]
    assert counts == {"email": 2, "phone": 1}


def test_messages_column():
    messages = pa.array([[{"role": "user", "content": "I'm at 81.2.69.160"}, {"role": "assistant", "content": "ok"}],
                         [{"role": "user", "content": "mail x@y.org"}]], pa.list_(MESSAGE))
    counts: Counter = Counter()
    out = pii.scrub_messages(messages, counts)
    assert out.type == messages.type
    assert out.to_pylist() == [[{"role": "user", "content": "I'm at [IP]"}, {"role": "assistant", "content": "ok"}],
                               [{"role": "user", "content": "mail [EMAIL]"}]]
    assert counts == {"ip": 1, "email": 1}


def test_quarantined_raw_input_is_scrubbed_too(tmp_path):
    """A bad record's raw bytes are stored in quarantine: PII in them is replaced as well."""
    from pipeline.config import SourcesConfig
    from pipeline.sources import read_file

    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": "mail bob@example.com or call +1 415 555 0100"}\n')
    raw = read_file(path, SourcesConfig()).quarantine["raw"][0].as_py().decode()
    assert "bob@example.com" not in raw and "[EMAIL]" in raw
    raw_off = read_file(path, SourcesConfig(scrub_pii=False)).quarantine["raw"][0].as_py().decode()
    assert "bob@example.com" in raw_off
