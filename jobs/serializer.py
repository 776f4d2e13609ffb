"""A data-only job serializer (msgpack), used identically by pools and workers.

ARQ's default is pickle, which lets anyone who can write to Redis run code in the workers.
msgpack carries only data: ``None``, booleans, numbers, strings, bytes, lists and maps, plus
datetimes as timestamps. Anything else is refused at enqueue time with ``TypeError``; an
exception stored as a failed job's result is kept as ``{"error": type, "message": text}``, plus
the ``error_type`` and ``error_message`` of the runtime's failures.
Producers serialize with :func:`payload_serializer`, which also refuses a job over
``JOB_MAX_PAYLOAD_BYTES``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgpack

from jobs.errors import PayloadTooLargeError

__all__ = ["deserialize", "payload_serializer", "serialize", "serialize_in_worker"]

_DATETIME_EXT = 1


def _default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return msgpack.ExtType(_DATETIME_EXT, value.isoformat().encode())
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, BaseException):
        stored = {"error": type(value).__name__, "message": str(value)}
        for detail in ("error_type", "error_message"):
            if isinstance(getattr(value, detail, None), str):
                stored[detail] = getattr(value, detail)
        return stored
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


#: Fields only ARQ's result records have (success, result, start and finish times).
_RESULT_FIELDS = frozenset({"s", "r", "st", "ft"})


def serialize_in_worker(value: Any) -> bytes:
    """:func:`serialize` for workers: a result record loses the job's arguments.

    ARQ keeps each finished job's result, with the job's arguments, in Redis for an hour; the
    arguments (recipients, message bodies) stay only in the job itself and ``failed_jobs``.
    """
    if isinstance(value, dict) and value.keys() >= _RESULT_FIELDS:
        value = {**value, "a": [], "k": {}}
    return serialize(value)


def deserialize(data: bytes) -> Any:
    """Decode msgpack bytes written by :func:`serialize`; raises on anything else."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def payload_serializer(max_bytes: int) -> Callable[[Any], bytes]:
    """:func:`serialize` for job payloads: one over ``max_bytes`` raises PayloadTooLargeError."""

    def serialize_payload(value: Any) -> bytes:
        data = serialize(value)
        if len(data) > max_bytes:
            name = value.get("f") if isinstance(value, dict) else None
            raise PayloadTooLargeError(str(name), len(data), max_bytes)
        return data

    return serialize_payload
