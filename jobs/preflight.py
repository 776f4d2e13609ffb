"""What a worker checks before it starts, and how it says what is wrong in one line."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

import redis.exceptions
from sqlalchemy.engine import make_url

from jobs.errors import ConfigurationError
from jobs.settings import Settings

__all__ = ["install_startup_hints", "redis_problem", "redis_unreachable_message"]


def redis_unreachable_message(settings: Settings, reason: str) -> str:
    """One line: which Redis could not be reached, why, and how to start one."""
    where = make_url(settings.redis_url).render_as_string(hide_password=True)
    return (
        f"Redis at {where} is unreachable ({reason}). Start one with "
        "`redis-server --daemonize yes` or "
        "`docker compose -f compose/base.yml -f compose/dev.yml up -d redis`, "
        "or point REDIS_URL at yours."
    )


async def redis_problem(settings: Settings) -> str | None:
    """Why Redis cannot be reached, or None when it answers."""
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.exceptions.RedisError, OSError) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        await client.aclose()
    return None


def install_startup_hints(settings: Settings) -> None:
    """Under the ``arq`` command, end a failed start with one line instead of a traceback.

    An unreachable Redis (after ARQ's own retries) prints where it was looked for and how to
    start one; a configuration error found at start-up prints its message, which names the
    setting. Any other error keeps Python's usual report.
    """
    if Path(sys.argv[0]).name != "arq" or getattr(sys.excepthook, "redis_hint", False):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if isinstance(error, redis.exceptions.ConnectionError | ConnectionRefusedError):
            print(redis_unreachable_message(settings, str(error)), file=sys.stderr)
        elif isinstance(error, ConfigurationError):
            print(f"jobs: {error}", file=sys.stderr)
        else:
            previous(kind, error, trace)

    hook.redis_hint = True  # type: ignore[attr-defined]
    sys.excepthook = hook
