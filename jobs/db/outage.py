"""Telling a database that cannot be reached from a statement that is wrong, and saying so once.

:func:`is_database_unreachable` is true for connection refused, reset or closed, a timeout
talking to the server, a server shutting down or starting up, too many connections, and on
SQLite a locked or unopenable file; false for a constraint violation, bad SQL or a missing
table. asyncpg raises a refused connection as a bare ``ConnectionRefusedError``, so an
``OSError`` or ``TimeoutError`` counts when it was raised inside a database driver.

:data:`DATABASE` is the process's view of the database: :meth:`DatabaseState.unreachable`
and :meth:`DatabaseState.reachable` log one line each time the state changes, however many
jobs run into the outage.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Final

import sqlalchemy.exc

from jobs.availability import Availability

__all__ = ["DATABASE", "DatabaseState", "is_database_unreachable"]

logger = logging.getLogger("jobs.database")

#: Modules whose ``OSError``/``TimeoutError`` is the database connection's.
DRIVER_MODULES: Final = ("asyncpg", "aiosqlite", "sqlalchemy", "sqlite3")
#: SQLSTATEs of "the server is not there (now)": class 08 is every connection exception.
UNREACHABLE_SQLSTATES: Final = frozenset({"57P01", "57P02", "57P03", "53300"})
#: SQLite's messages for a database file it cannot use at the moment.
SQLITE_UNREACHABLE: Final = (
    "database is locked",
    "database is busy",
    "unable to open database file",
    "disk i/o error",
)


def _raised_in_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in DRIVER_MODULES:
            return True
        traceback = traceback.tb_next
    return False


def _one(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection came free
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in UNREACHABLE_SQLSTATES
    ):
        return True
    if type(exc).__module__.startswith("sqlite3") and type(exc).__name__ == "OperationalError":
        return str(exc).lower().startswith(SQLITE_UNREACHABLE)
    if isinstance(exc, (OSError, TimeoutError)):
        return _raised_in_driver(exc.__traceback__)
    return False


def is_database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one(current):
            return True
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and _one(orig):
            return True
        current = current.__cause__ or current.__context__
    return False


class DatabaseState:
    """Whether this process last found the database reachable; logs each change once."""

    def __init__(self) -> None:
        self.availability = Availability()

    @property
    def is_down(self) -> bool:
        """Whether the last word was "unreachable"."""
        return self.availability.is_down

    def unreachable(self, exc: BaseException) -> None:
        """Note a failure to reach the database; the first one of an outage logs a warning."""
        if self.availability.failed():
            logger.warning(
                "database unreachable (%s); jobs that need it wait for it",
                type(exc).__name__,
                extra={"database": {"state": "unreachable", "error_type": type(exc).__name__}},
            )

    def reachable(self) -> None:
        """Note a statement that went through; the first one after an outage logs it."""
        seconds = self.availability.answered()
        if seconds is not None:
            logger.warning(
                "database reachable again after %.1fs",
                seconds,
                extra={"database": {"state": "reachable", "outage_s": round(seconds, 3)}},
            )


#: This process's view of its database.
DATABASE = DatabaseState()
