"""How a command or a worker says, in one line, that Redis or the database cannot be reached.

Every ``python -m jobs`` command and every ``arq jobs.<family>.WorkerSettings`` worker turns an
unreachable Redis, an unreachable or refusing PostgreSQL, or a database that does not exist
into one line naming what was tried and what to do, instead of a traceback.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from jobs.errors import ConfigurationError
from jobs.settings import Settings

__all__ = [
    "connection_problem",
    "install_startup_hints",
    "redis_problem",
    "redis_unreachable_message",
]

#: SQLSTATEs of a refused login, and of a database that does not exist.
_LOGIN_REFUSED = {"28P01", "28000"}
_NO_SUCH_DATABASE = "3D000"
_DEV_STACK = "docker compose -f compose/base.yml -f compose/dev.yml up -d"


def _without_password(url: str) -> str:
    from jobs.redis_connection import redis_url_for_display

    return redis_url_for_display(url)


def redis_unreachable_message(settings: Settings, reason: str) -> str:
    """One line: which Redis could not be reached, why, and how to start one."""
    return (
        f"Redis at {_without_password(settings.redis_url)} is unreachable ({reason}). Start one "
        f"with `redis-server --daemonize yes` or `{_DEV_STACK} redis`, or point REDIS_URL at "
        "yours."
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what caused it (``__cause__``, ``__context__``, a driver's ``orig``)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def _redis_message(settings: Settings, error: BaseException) -> str | None:
    import redis.exceptions

    from jobs.redis_link import RedisUnavailableError

    for cause in _causes(error):
        if isinstance(cause, redis.exceptions.AuthenticationError) or (
            isinstance(cause, redis.exceptions.ResponseError)
            and str(cause).startswith(("NOAUTH", "WRONGPASS", "invalid password"))
        ):
            return (
                f"Redis at {_without_password(settings.redis_url)} refused the login ({cause}): "
                "check the password in REDIS_URL."
            )
        if isinstance(cause, RedisUnavailableError):  # the client's retries are in its reason
            return redis_unreachable_message(settings, cause.reason)
        if isinstance(cause, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return redis_unreachable_message(settings, f"{type(cause).__name__}: {cause}")
    return None


def _database_message(settings: Settings, error: BaseException) -> str | None:
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        return None
    parts = urlsplit(url.replace("+asyncpg", "", 1))
    where = f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}"
    name, user = parts.path.lstrip("/") or "(default)", parts.username or "(default)"
    for cause in _causes(error):
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate == _NO_SUCH_DATABASE:
            return (
                f"{where} has no database {name!r}: create it (`createdb -h {parts.hostname} "
                f"-p {parts.port or 5432} -U {user} {name}`) or fix DATABASE_URL."
            )
        if sqlstate in _LOGIN_REFUSED:
            return f"{where} refused user {user!r} ({cause}): check DATABASE_URL's credentials."
    for cause in _causes(error):
        if isinstance(cause, ConnectionError | socket.gaierror | TimeoutError):
            return (
                f"{where} is unreachable ({type(cause).__name__}: {cause}). Start it "
                f"(`{_DEV_STACK} postgres`) or point DATABASE_URL at yours."
            )
    return None


def connection_problem(settings: Settings, error: BaseException) -> str | None:
    """One line saying which service ``error`` could not reach, or None if it is not that."""
    return _redis_message(settings, error) or _database_message(settings, error)


async def redis_problem(settings: Settings) -> str | None:
    """One line on why Redis cannot be used, or None when it answers."""
    from redis.asyncio import Redis

    from jobs.redis_connection import close_sentinels, open_redis, redis_options

    options = replace(redis_options(settings.redis_url), conn_timeout=2)
    client = open_redis(options, Redis)
    try:
        await client.ping()
    except Exception as error:
        message = _redis_message(settings, error)
        if message is None:
            raise
        return message
    finally:
        await client.aclose()
        await close_sentinels(client)
    return None


def install_startup_hints(settings: Settings) -> None:
    """Under the ``arq`` command, end a failed start with one line instead of a traceback.

    An unreachable Redis (after ARQ's own retries) or database prints what was tried and what to
    do; a configuration error found at start-up prints its message, which names the setting. Any
    other error keeps Python's usual report. ARQ's own log lines take the project's format.
    """
    if Path(sys.argv[0]).name != "arq" or getattr(sys.excepthook, "redis_hint", False):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        message = connection_problem(settings, error)
        if message is not None:
            print(message, file=sys.stderr)
        elif isinstance(error, ConfigurationError):
            print(f"jobs: {error}", file=sys.stderr)
        else:
            previous(kind, error, trace)

    hook.redis_hint = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    arq_cli = sys.modules.get("arq.cli")
    if arq_cli is not None:
        from jobs.logs import command_logging

        # `arq` configures its logging after importing the settings class, from this function
        arq_cli.default_log_config = lambda verbose: command_logging(  # type: ignore[attr-defined]
            settings, verbose=verbose
        )
