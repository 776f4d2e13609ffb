"""A data-only job serializer (msgpack), used identically by pools and workers.

ARQ's default is pickle, which lets anyone who can write to Redis run code in the workers.
msgpack carries only data: ``None``, booleans, numbers, strings, bytes, lists and maps, plus
datetimes as timestamps. Anything else is refused at enqueue time with ``TypeError``; an
exception stored as a failed job's result is kept as ``{"error": type, "message": text}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgpack

__all__ = ["deserialize", "serialize"]

_DATETIME_EXT = 1


def _default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return msgpack.ExtType(_DATETIME_EXT, value.isoformat().encode())
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialize {type(value).__name__} into a job payload")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _DATETIME_EXT:
        return dt.datetime.fromisoformat(data.decode())
    raise ValueError(f"unknown msgpack extension type {code}")


def serialize(value: Any) -> bytes:
    """Encode a job payload or result as msgpack bytes."""
    data: bytes = msgpack.packb(value, default=_default, use_bin_type=True)
    return data


def deserialize(data: bytes) -> Any:
    """Decode msgpack bytes written by :func:`serialize`; raises on anything else."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
