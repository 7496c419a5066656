"""Field access for the normalizers. Each helper returns a clean value or raises `RecordError`
with the quarantine kind and a message that names the field, what was found and what was expected."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MISSING = object()


class RecordError(Exception):
    """One input record cannot be normalized; `kind` is the quarantine error_kind."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def type_name(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


@dataclass
class Ctx:
    """What a normalizer needs besides the record: its id, the text limit and stat counters."""
    record_id: str
    max_text_chars: int
    counters: Counter = field(default_factory=Counter)

    def get(self, obj: dict, key: str, where: str = "", default=MISSING):
        value = obj.get(key)
        if value is None:
            if default is not MISSING:
                return default
            state = "null" if key in obj else "missing"
            raise RecordError("missing_field", f"required field {_path(where, key)!r} is {state}")
        return value

    def check_text(self, value, name: str, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            raise RecordError("wrong_type", f"{name}: expected a string, got {type_name(value)} ({_short(value)})")
        if len(value) > self.max_text_chars:
            raise RecordError("oversized", f"{name}: {len(value):,} characters, "
                                            f"over max_text_chars={self.max_text_chars:,}")
        if not allow_empty and not value.strip():
            blank = f" ({len(value)} whitespace characters)" if value else ""
            raise RecordError("empty_text", f"{name} is empty{blank}")
        return value

    def text(self, obj: dict, key: str, where: str = "", allow_empty: bool = False, default=MISSING) -> str:
        value = self.get(obj, key, where, default)
        return value if value is default else self.check_text(value, _path(where, key), allow_empty)

    def ident(self, obj: dict, key: str, where: str = "", default=MISSING) -> str:
        """An id: a non-empty string or an integer (returned as a string)."""
        value = self.get(obj, key, where, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise RecordError("wrong_type", f"{_path(where, key)}: expected a string or integer id, "
                                            f"got {type_name(value)}")
        if isinstance(value, str) and not value.strip():
            raise RecordError("empty_text", f"{_path(where, key)}: id is an empty string")
        return str(value)

    def integer(self, obj: dict, key: str, where: str = "", default=MISSING) -> int:
        """An integer, also from its decimal string form (Stack Exchange dumps keep numbers as strings)."""
        value = self.get(obj, key, where, default)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise RecordError("wrong_type", f"{_path(where, key)}: expected an integer, "
                                        f"got {type_name(value)} ({_short(value)})")

    def array(self, obj: dict, key: str, where: str = "", default=MISSING) -> list:
        value = self.get(obj, key, where, default)
        if value is not default and not isinstance(value, list):
            raise RecordError("wrong_type", f"{_path(where, key)}: expected an array, got {type_name(value)}")
        return value

    def object(self, value, name: str) -> dict:
        if not isinstance(value, dict):
            raise RecordError("wrong_type", f"{name}: expected an object, got {type_name(value)} ({_short(value)})")
        return value


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
