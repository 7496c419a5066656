"""PII scrubbing over Arrow text columns: emails, phone numbers, IP addresses, secrets, card numbers
-> typed placeholders ([EMAIL], [PHONE], [IP], [SECRET], [CARD]).

Rules whose regex alone is precise run as one `replace_substring_regex` (RE2) over the whole column.
Rules that need a check a regex cannot make (Luhn for cards, public-vs-private addresses, digit
counts for phones, a token that looks random) first select candidate rows with one vectorized RE2
match, then replace in Python on those rows only. Kept on purpose: years, versions (3.11.7), prices,
dates, loopback/private/documentation IPs (127.0.0.1, 192.168.x.x, 203.0.113.x) and numbers that
fail the Luhn check."""
from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from stdnum import luhn

KINDS = ("secret", "email", "card", "ip", "phone")
PLACEHOLDER = {"secret": "[SECRET]", "email": "[EMAIL]", "card": "[CARD]", "ip": "[IP]", "phone": "[PHONE]"}


@dataclass(frozen=True)
class Rule:
    kind: str
    re2: str                                   # RE2 pattern: the replacement itself, or the candidate filter
    python: re.Pattern | None = None           # precise pattern, used on candidate rows only
    valid: Callable[[re.Match], bool] | None = None


def _token_like(m: re.Match) -> bool:
    token = m.group("token")
    return len(token) >= 32 or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token))


_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|35|6011|64[4-9]|65|62)")


def _card(m: re.Match) -> bool:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    separators = set(re.findall(r"\D", text))
    if not separators and len(digits) > 16:
        return False                                   # long bare digit runs are ids (tweets, orders)
    if separators and not all(3 <= len(group) <= 6 for group in re.split(r"[ \-]", text)):
        return False                                   # cards group digits by 4 (Amex 4-6-5); not hex dumps
    return (13 <= len(digits) <= 19 and len(separators) <= 1 and len(set(digits)) > 1
            and _CARD_PREFIX.match(digits) is not None and luhn.is_valid(digits))


def _public_ip(m: re.Match) -> bool:
    try:
        return ipaddress.ip_address(m.group(0)).is_global
    except ValueError:
        return False


def _phone(m: re.Match) -> bool:
    number = m.group("number")
    digits = sum(c.isdigit() for c in number)
    bare = number.lstrip("+").isdigit()                # +14155552671: E.164 without separators
    return (10 if bare else 7) <= digits <= 15


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

RULES: tuple[Rule, ...] = (
    # secrets first: they contain digits and letters that later rules could split
    Rule("secret", r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)-----END [A-Z ]*PRIVATE KEY-----"),
    Rule("secret", r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{20,}"),
    Rule("secret", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    Rule("secret", r"\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}"),
    Rule("secret", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    Rule("secret", r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    Rule("secret", r"\bAIza[0-9A-Za-z_\-]{35}"),
    Rule("secret", r"\bhf_[A-Za-z]{34}\b"),
    Rule("secret", r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    Rule("secret", r"(?i:key|token|secret|passw|bearer|auth)",
         re.compile(r"(?i)(?P<prefix>\b(?:api[_-]?key|access[_-]?key|secret(?:[_-]?key)?|(?:auth|access|api)?[_-]?token"
                    r"|client[_-]?secret|password|passwd)\b[\"']?[ \t]*(?::|=|=>)[ \t]*[\"']?|\bbearer[ \t]+)"
                    r"(?P<token>[A-Za-z0-9+/_\-]{20,}={0,2})(?![A-Za-z0-9+/_\-])"),
         _token_like),
    Rule("email", r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b"),
    Rule("card", r"\d(?:[ \-]?\d){12,18}",
         re.compile(r"(?<![\w.,\-/])\d(?:[ \-]?\d){12,18}(?!\w|[.,\-]\d)"), _card),
    Rule("ip", r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
         re.compile(rf"(?<![\w./]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)"), _public_ip),   # not Chrome/110.0.0.0
    Rule("ip", r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}",
         re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){3,7}[0-9A-Fa-f]{0,4}(?![\w:])"), _public_ip),  # not a[29::30]
    Rule("phone", r"\+\d",
         re.compile(r"(?<![\w+])(?P<number>\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,4})"
                    r"(?!\w|[.\-]\d)"),
         _phone),
    Rule("phone", r"\d{3}\)? ?[ .\-]?\d{3}[ .\-]\d{4}",
         re.compile(r"(?<![\w.+\-])(?P<number>\([2-9]\d{2}\) ?\d{3}[ .\-]\d{4}"
                    r"|[2-9]\d{2}(?P<sep>[ .\-])\d{3}(?P=sep)\d{4})"
                    r"(?!\w|[.\-]\d)"),
         _phone),
    Rule("phone", r"(?i:phone|tel|mobile|cell|fax|whatsapp)",
         re.compile(r"(?i)(?P<prefix>\b(?:phone|tel|mobile|cell|fax|whatsapp)(?:\s*(?:no\.?|number|#))?\s*[:.]?\s*)"
                    r"(?P<number>\+?\(?\d[\d ()\-]{5,17}\d)(?!\w|[.\-]\d)"),
         _phone),
)


def _python_replace(texts: list[str | None], rule: Rule) -> tuple[list[str | None], int]:
    count = 0
    placeholder = PLACEHOLDER[rule.kind]

    def sub(m: re.Match) -> str:
        nonlocal count
        if not rule.valid(m):
            return m.group(0)
        count += 1
        prefix = m.groupdict().get("prefix") or ""
        return prefix + placeholder

    return [t if t is None else rule.python.sub(sub, t) for t in texts], count


# Any rule's RE2 pattern: one scan finds the few rows that may hold PII; the rules run on those only
# (a row no rule matches is left unchanged by all of them, so the result is the same).
ANY_RULE = "|".join(f"(?:{rule.re2})" for rule in RULES)


def scrub(texts: pa.Array | pa.ChunkedArray, counts: Counter) -> pa.Array:
    """Scrub one string column; adds the number of replacements per kind to `counts`."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if len(texts) == 0:
        return texts
    maybe = pc.fill_null(pc.match_substring_regex(texts, ANY_RULE), False)
    rows = pc.indices_nonzero(maybe)
    if len(rows) == 0:
        return texts
    return pc.replace_with_mask(texts, maybe, _apply_rules(texts.take(rows), counts))


def _apply_rules(texts: pa.Array, counts: Counter) -> pa.Array:
    for rule in RULES:
        if len(texts) == 0:
            break
        if rule.python is None:
            found = pc.sum(pc.count_substring_regex(texts, rule.re2)).as_py() or 0
            if found:
                counts[rule.kind] += found
                texts = pc.replace_substring_regex(texts, rule.re2, PLACEHOLDER[rule.kind])
            continue
        mask = pc.fill_null(pc.match_substring_regex(texts, rule.re2), False)
        rows = pc.indices_nonzero(mask)
        if len(rows) == 0:
            continue
        replaced, found = _python_replace(texts.take(rows).to_pylist(), rule)
        if found:
            counts[rule.kind] += found
            texts = pc.replace_with_mask(texts, mask, pa.array(replaced, pa.string()))
    return texts


def scrub_messages(messages: pa.Array | pa.ChunkedArray, counts: Counter, once_per_text: bool = False) -> pa.Array:
    """Scrub the `content` of every message in a list<struct<role, content>> column. With
    `once_per_text`, for columns that repeat texts (a record's prompt on each of its candidates),
    each distinct text is scrubbed, and its replacements counted, once."""
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    flat = messages.values
    if once_per_text:
        encoded = pc.dictionary_encode(flat.field("content"))
        content = scrub(encoded.dictionary, counts).take(encoded.indices)
    else:
        content = scrub(flat.field("content"), counts)
    rebuilt = pa.StructArray.from_arrays([flat.field("role"), content], names=["role", "content"])
    return pa.ListArray.from_arrays(messages.offsets, rebuilt, mask=messages.is_null())


def scrub_raw(quarantine: pa.Table, counts: Counter) -> pa.Table:
    """Scrub the `raw` bytes kept with quarantined records (PII must not be stored there either).
    Raw bytes without PII stay byte-exact; where PII was found, bytes that are not valid UTF-8
    come back as U+FFFD (privacy over byte-exactness)."""
    if not quarantine.num_rows:
        return quarantine
    raws = quarantine["raw"].to_pylist()
    decoded = [None if r is None else r.decode("utf-8", "replace") for r in raws]
    texts = scrub(pa.array(decoded, pa.string()), counts).to_pylist()
    scrubbed = pa.array([r if t == d else t.encode("utf-8") for r, d, t in zip(raws, decoded, texts)], pa.binary())
    return quarantine.set_column(quarantine.schema.get_field_index("raw"), "raw", scrubbed)
