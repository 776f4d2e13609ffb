"""Time zones for tests whose outcome depends on the local time of day."""

from __future__ import annotations

from jobs.db import utcnow


def zone_at_local_hour(hour: int) -> str:
    """A fixed-offset zone (``Etc/GMT…``) whose local hour is ``hour`` now."""
    offset = (hour - utcnow().hour + 12) % 24 - 12  # in -12..11
    # the Etc zones' signs are POSIX-style: Etc/GMT-5 is five hours east of UTC
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
