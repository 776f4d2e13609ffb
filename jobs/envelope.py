"""The job envelope ARQ reads from Redis, checked field by field before a worker trusts it.

ARQ's worker reads five fields of every payload — ``f`` (job name), ``a`` (positional
arguments), ``k`` (keyword arguments), ``t`` (try number or nil) and ``et`` (enqueue time in
ms) — and uses them unchecked: a name that is a list, a try that is text or an enqueue time
out of ``datetime``'s range raise from ARQ's main loop and stop the worker. The worker's
deserializer (:func:`worker_deserializer`) therefore hands ARQ only envelopes whose fields have
the types and ranges ARQ needs and name a job of that worker. Anything else becomes an envelope
of the reserved job :data:`jobs.constants.REFUSED_PAYLOAD_JOB`, which records the refusal
(see :mod:`jobs.quarantine`) instead of running anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from jobs.constants import HEADERS_KWARG, REFUSED_PAYLOAD_JOB
from jobs.serializer import deserialize
from jobs.storable import safe_data, safe_text

__all__ = ["envelope_problem", "worker_deserializer"]

#: Largest enqueue time ARQ can turn into a datetime (9999-12-31), in ms.
MAX_ENQUEUE_TIME_MS: Final = 253_402_300_799_999
#: Largest try number a payload may carry.
MAX_TRY: Final = 1_000_000


def _kind(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _arguments_problem(data: dict[Any, Any]) -> str | None:
    if "a" not in data or not isinstance(data["a"], list):
        return f"field 'a' (positional arguments) must be a list, not {_kind(data.get('a'))}"
    kwargs = data.get("k")
    if not isinstance(kwargs, dict):
        return f"field 'k' (keyword arguments) must be a map, not {_kind(kwargs)}"
    if not all(isinstance(key, str) for key in kwargs):
        return "field 'k' (keyword arguments) has a key that is not a string"
    headers = kwargs.get(HEADERS_KWARG)
    if headers is not None and not (
        isinstance(headers, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        return f"argument {HEADERS_KWARG} (trace context) must be a map of strings"
    return None


def envelope_problem(data: Any, job_names: frozenset[str], queue: str) -> str | None:
    """Why ``data`` is not an envelope this worker can run, or None when it is."""
    if not isinstance(data, dict):
        return f"payload is a {_kind(data)}, not a map"
    name = data.get("f")
    if not isinstance(name, str):
        return f"field 'f' (job name) must be a string, not {_kind(name)}"
    if name == REFUSED_PAYLOAD_JOB:
        return f"job name {name!r} is reserved for refused payloads"
    if name not in job_names:
        return f"unknown job {safe_text(name, 100)!r} on queue {queue}"
    problem = _arguments_problem(data)
    if problem is not None:
        return problem
    tries = data.get("t")
    if tries is not None and not _is_int(tries):
        return f"field 't' (try) must be an integer or nil, not {_kind(tries)}"
    if tries is not None and not 0 <= tries <= MAX_TRY:
        return f"field 't' (try) {tries} is out of range (0-{MAX_TRY})"
    enqueued = data.get("et")
    if not isinstance(enqueued, int) or isinstance(enqueued, bool):
        return f"field 'et' (enqueue time) must be an integer, not {_kind(enqueued)}"
    if not 0 <= enqueued <= MAX_ENQUEUE_TIME_MS:
        return f"field 'et' (enqueue time) {enqueued} is out of range (ms since 1970, until 9999)"
    return None


def _refused(reason: str, size: int, data: Any) -> dict[str, Any]:
    """The envelope of the reserved job that records a refused payload."""
    claimed = data.get("f") if isinstance(data, dict) else None
    arguments = data.get("k") if isinstance(data, dict) else None
    return {
        "f": REFUSED_PAYLOAD_JOB,
        "a": [],
        "k": {
            "reason": reason,
            "size": size,
            "job": safe_text(claimed, 200) if isinstance(claimed, str | bytes) else None,
            "arguments": safe_data(arguments) if isinstance(arguments, dict) else {},
        },
        "t": None,
        "et": int(time.time() * 1000),
    }


def worker_deserializer(
    queue: str, job_names: Iterable[str], max_bytes: int
) -> Callable[[bytes], Any]:
    """The deserializer of a worker on ``queue`` running ``job_names``; it never raises.

    A payload over ``max_bytes`` is refused before it is decoded.
    """
    known = frozenset(job_names)

    def read(raw: bytes) -> Any:
        size = len(raw)
        if size > max_bytes:
            return _refused(f"payload is over JOB_MAX_PAYLOAD_BYTES ({max_bytes})", size, None)
        try:
            data = deserialize(raw)
        except Exception as error:  # any decoding failure is a refusal, never a crash
            reason = f"payload is not msgpack written by the runtime ({type(error).__name__})"
            return _refused(reason, size, None)
        problem = envelope_problem(data, known, queue)
        if problem is not None:
            return _refused(problem, size, data)
        return data

    return read
