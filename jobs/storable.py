"""Which text a database can store: no NUL character, no lone surrogate.

PostgreSQL's ``text`` and ``jsonb`` refuse U+0000, and a surrogate half (U+D800 to U+DFFF) cannot
be encoded in UTF-8 at all, so such a value would pass validation and then fail at the first
``INSERT``. Values are checked where they enter — job arguments at enqueue, e-mails when
queued — so the caller learns which field is wrong and nothing is half-stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from jobs.errors import UnstorableTextError

__all__ = ["require_storable", "unstorable_character", "unstorable_values"]

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
