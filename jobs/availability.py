"""Whether a dependency answered the last time it was asked, and when that changed.

Redis (:class:`jobs.redis_link.RedisLink`), the database (:class:`jobs.db.outage.DatabaseState`)
and the telemetry exporters (:class:`jobs.export_watch.ExportWatch`) each log one line when
they stop answering and one when they answer again, never one per failed call: this is the
state they keep for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Availability"]


class Availability:
    """Up, or down since a time; each change is reported once by the call that made it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.down_since: float | None = None

    @property
    def is_down(self) -> bool:
        """Whether the last call failed."""
        return self.down_since is not None

    def failed(self) -> bool:
        """Note a failed call; True when it begins an outage."""
        if self.down_since is not None:
            return False
        self.down_since = self.clock()
        return True

    def answered(self) -> float | None:
        """Note a call that went through; the seconds the outage lasted, if it ends one."""
        if self.down_since is None:
            return None
        seconds = self.clock() - self.down_since
        self.down_since = None
        return seconds
