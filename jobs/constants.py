"""Names, keys and prefixes shared by producers and workers, in one place."""

from typing import Final

__all__ = [
    "ABORT_KEY_PREFIX",
    "FAMILIES",
    "HEADERS_KWARG",
    "MESSAGING_SYSTEM",
    "QUEUE_PREFIX",
    "REFUSED_PAYLOAD_JOB",
    "WAKE_SUFFIX",
    "WORKER_KEY_PREFIX",
    "queue_name",
    "wake_key",
]

#: Every task family; each has its own module ``jobs.<family>`` and its own queue.
FAMILIES: Final = ("email", "files", "sync", "maintenance", "ai")

#: Prefix of every family's ARQ queue (a Redis sorted set): ``jobs:queue:<family>``.
QUEUE_PREFIX: Final = "jobs:queue:"

#: Reserved keyword argument in the job payload carrying the producer's trace context.
#: The runtime removes it before the job function sees its arguments.
HEADERS_KWARG: Final = "__headers__"

#: Reserved ARQ function name of every worker: it records a payload the worker refused to run.
REFUSED_PAYLOAD_JOB: Final = "jobs:refused-payload"

#: Prefix of each worker process's heartbeat record: ``jobs:worker:<family>:<host>:<pid>``.
WORKER_KEY_PREFIX: Final = "jobs:worker:"

#: Suffix of each queue's wake-up list (``jobs:queue:<family>:wake``): one entry per job
#: enqueued through the client, popped by an idle worker blocked on it.
WAKE_SUFFIX: Final = ":wake"

#: Prefix of the mark an abort leaves, ``jobs:abort:<job id>``: a worker whose job is cancelled
#: reads it to tell an abort from its own shutdown.
ABORT_KEY_PREFIX: Final = "jobs:abort:"

#: Value of ``messaging.system`` on every span.
MESSAGING_SYSTEM: Final = "arq"


def queue_name(family: str) -> str:
    """The ARQ queue a family's jobs are enqueued to and its workers read."""
    return f"{QUEUE_PREFIX}{family}"


def wake_key(queue: str) -> str:
    """The wake-up list of ``queue``: producers push to it, idle workers block on it."""
    return f"{queue}{WAKE_SUFFIX}"
