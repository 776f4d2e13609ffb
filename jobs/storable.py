"""Which text a database can store: no NUL character, no lone surrogate.

PostgreSQL's ``text`` and ``jsonb`` refuse U+0000, and a surrogate half (U+D800 to U+DFFF) cannot
be encoded in UTF-8 at all, so such a value would pass validation and then fail at the first
``INSERT``. Values are checked where they enter — job arguments at enqueue, e-mails when
queued — so the caller learns which field is wrong and nothing is half-stored.

What a worker records about a failed or refused job comes from Redis unchecked, so it is made
storable instead (:func:`safe_text`, :func:`safe_data`): bytes described, NUL, control
characters (a newline would forge a log line) and lone surrogates escaped, non-finite floats
and keys that are not text turned into text, ids cut to their column with a hash of the whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from jobs.errors import UnstorableTextError

__all__ = [
    "require_storable",
    "safe_data",
    "safe_text",
    "unstorable_character",
    "unstorable_values",
]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """What makes ``text`` unstorable (its first such character and where), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    character = found.group()
    what = "a NUL character" if character == "\x00" else "a lone surrogate"
    return (
        f"contains {what} (U+{ord(character):04X}) at position {found.start()}, "
        "which cannot be stored"
    )


Location = tuple[str | int, ...]


def unstorable_values(value: Any, location: Location = ()) -> Iterator[tuple[Location, str]]:
    """Every unstorable text inside ``value`` (nested dicts, lists, models): (location, problem)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, BaseModel):
        value = {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, str):
        problem = unstorable_character(value)
        if problem is not None:
            yield location, problem
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from unstorable_values(key, location)
            yield from unstorable_values(item, (*location, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from unstorable_values(item, (*location, index))


def require_storable(**fields: Any) -> None:
    """Raise :class:`UnstorableTextError` naming the first field that cannot be stored."""
    for location, problem in unstorable_values(fields):
        raise UnstorableTextError(".".join(str(part) for part in location), problem)


#: Deepest nesting kept in stored data.
MAX_DEPTH = 32

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_UNPRINTABLE_IN_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF or 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return {10: "\\n", 13: "\\r", 9: "\\t"}.get(code) or f"\\x{code:02x}"


def safe_text(value: str | bytes, limit: int, *, multiline: bool = False) -> str:
    r"""``value`` with control characters escaped, at most ``limit`` characters long.

    Bytes that are not UTF-8 keep their bytes as ``\xNN``. ``multiline`` keeps newlines and
    tabs (for messages). A cut value ends with ``…`` and the first 12 hex digits of the
    original's SHA-256, so two long values stay distinguishable.
    """
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    text = raw.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    text = (_UNPRINTABLE_IN_LINES if multiline else _UNPRINTABLE).sub(_escape, text)
    if len(text) <= limit:
        return text
    if limit < 20:
        return text[:limit]
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return f"{text[: limit - 13]}…{digest}"


def _storable_string(value: str) -> str:
    """``value`` without what databases refuse in text: NUL and unpaired surrogates."""
    return _UNSTORABLE.sub(_escape, value) if _UNSTORABLE.search(value) else value


def safe_data(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data every database stores: bytes described, keys as text, NUL escaped.

    Strings otherwise stay as they are (newlines included), so recorded arguments can be
    enqueued again; their size is bounded by ``JOB_MAX_PAYLOAD_BYTES`` before they get here.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _storable_string(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes: {safe_text(bytes(value[:48]), 200)}>"
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__} nested deeper than {MAX_DEPTH}>"
    if isinstance(value, dict):
        return {
            safe_text(key if isinstance(key, str | bytes) else repr(key), 200): safe_data(
                item, depth + 1
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_data(item, depth + 1) for item in value]
    return safe_text(repr(value), 1000)
