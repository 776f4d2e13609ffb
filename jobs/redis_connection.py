"""``REDIS_URL`` read once into connection options that producers and workers share.

ARQ's workers connect with a ``RedisSettings`` (:func:`redis_settings`); producers, health
checks and operator commands with a redis-py client (:func:`open_redis`). Both come from one
reading of the URL (:func:`redis_options`), so a URL that works for one works for the other:

- ``redis://[user:password@]host[:port][/db]`` — user and password may be percent-encoded
  (``p%40ss`` is ``p@ss``), as in any URL;
- ``rediss://…`` — TLS. The server's certificate is verified against the system's CAs, or
  ``?ssl_ca_certs=/path/ca.pem``, *and* its host name is checked; ``ssl_check_hostname=false``
  (or ``ssl_cert_reqs=none``, which verifies nothing) turns that off explicitly.
  ``ssl_certfile`` and ``ssl_keyfile`` present a client certificate;
- ``unix:///path/redis.sock[?db=N]``;
- ``redis+sentinel://[user:password@]host1[:port1],host2[:port2],…/<master name>[/db]`` —
  a Redis run by Sentinel: the sentinels (port 26379 by default) say which server is the
  master, and clients follow a failover. The password is the data servers'; sentinels
  themselves must not require one, and TLS is not available with Sentinel (ARQ cannot pass it).

``?db=N`` works with every form. Any other option is refused by name rather than ignored.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:  # imported when used, so that reading the settings stays light
    from arq.connections import RedisSettings
    from redis.asyncio import Redis

__all__ = [
    "RedisOptions",
    "adopt_retry_policy",
    "close_sentinels",
    "open_redis",
    "redis_options",
    "redis_settings",
    "redis_url_for_display",
]

DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379
SENTINEL_SCHEME: Final = "redis+sentinel"
SCHEMES: Final = ("redis", "rediss", "unix", SENTINEL_SCHEME)
TLS_OPTIONS: Final = (
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")

R = TypeVar("R", bound="Redis")


@dataclass(frozen=True)
class RedisOptions:
    """How to connect: the fields (and defaults) of ARQ's ``RedisSettings``, without ARQ.

    One default differs: connecting may take 5 s (ARQ's 1 s fails on a busy host).
    """

    host: str | list[tuple[str, int]] = "localhost"
    port: int = DEFAULT_PORT
    unix_socket_path: str | None = None
    database: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_ca_data: str | None = None
    ssl_check_hostname: bool = False
    conn_timeout: float = 5
    conn_retries: int = 5
    conn_retry_delay: float = 1
    max_connections: int | None = None
    sentinel: bool = False
    sentinel_master: str = "mymaster"
    retry_on_timeout: bool = False
    retry_on_error: list[type[Exception]] | None = None
    retry: Any = field(default=None)


@dataclass(frozen=True)
class _Credentials:
    username: str | None
    password: str | None


def _split_credentials(netloc: str) -> tuple[_Credentials, str]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return _Credentials(None, None), netloc
    user, colon, password = userinfo.partition(":")
    return (
        _Credentials(unquote(user) or None, unquote(password) if colon else None),
        hosts,
    )


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    host = host or "localhost"
    if not port_text:
        return host, default_port
    if not port_text.isdecimal() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} is not a port number")
    return host, int(port_text)


def _database(text: str) -> int:
    if not text.isdecimal():
        raise ValueError(f"database {text!r} is not a number")
    return int(text)


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _tls_options(scheme: str, options: dict[str, str]) -> dict[str, Any]:
    given = [name for name in TLS_OPTIONS if name in options]
    if scheme != "rediss":
        if given:
            raise ValueError(f"{given[0]} needs a rediss:// URL")
        return {"ssl": False}
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in ("required", "optional", "none"):
        raise ValueError("ssl_cert_reqs must be required, optional or none")
    check = options.get("ssl_check_hostname")
    check_hostname = cert_reqs != "none" if check is None else _flag("ssl_check_hostname", check)
    if check_hostname and cert_reqs == "none":
        raise ValueError("ssl_check_hostname=true needs ssl_cert_reqs=required or optional")
    return {
        "ssl": True,
        "ssl_ca_certs": options.get("ssl_ca_certs"),
        "ssl_certfile": options.get("ssl_certfile"),
        "ssl_keyfile": options.get("ssl_keyfile"),
        "ssl_cert_reqs": cert_reqs,
        "ssl_check_hostname": check_hostname,
    }


def redis_settings(url: str) -> RedisSettings:
    """The ``RedisSettings`` a worker gives ARQ for ``url``; ValueError if unusable."""
    from arq.connections import RedisSettings

    return RedisSettings(**asdict(redis_options(url)))


def redis_options(url: str) -> RedisOptions:
    """The connection options of ``url`` (see the module docstring); ValueError if unusable.

    It imports no Redis client. The error never repeats the URL, which may hold a password.
    """
    return RedisOptions(**_options(url))


def _options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"db", *TLS_OPTIONS})
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (accepted: db, {', '.join(TLS_OPTIONS)})")
    credentials, hosts = _split_credentials(parts.netloc)
    path = [part for part in parts.path.split("/") if part] if scheme != "unix" else []
    database = _database(options["db"]) if "db" in options else 0
    common: dict[str, Any] = {
        "username": credentials.username,
        "password": credentials.password,
        **_tls_options(scheme, options),
    }
    if scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return {"unix_socket_path": parts.path, "database": database, **common}
    if scheme == SENTINEL_SCHEME:
        if not path:
            raise ValueError("a redis+sentinel:// URL needs the master's name: …/<name>[/db]")
        if len(path) > 2:
            raise ValueError("a redis+sentinel:// URL's path is /<master name>[/db]")
        sentinels = [_host_port(host, DEFAULT_SENTINEL_PORT) for host in hosts.split(",")]
        return {
            "host": sentinels,
            "sentinel": True,
            "sentinel_master": unquote(path[0]),
            "database": _database(path[1]) if len(path) == 2 else database,
            **common,
        }
    if "," in hosts:
        raise ValueError("several hosts need a redis+sentinel:// URL")
    host, port = _host_port(hosts, DEFAULT_PORT)
    if len(path) > 1:
        raise ValueError("the URL's path is the database number: /N")
    return {
        "host": host,
        "port": port,
        "database": _database(path[0]) if path else database,
        **common,
    }


def redis_url_for_display(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for messages and logs."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hosts}").geturl()


def open_redis(options: RedisOptions | RedisSettings, redis_class: type[R], **connection: Any) -> R:
    """A client of ``redis_class`` (ArqRedis, or plain Redis) for ``options``, as ARQ connects.

    It gets the keyword arguments ARQ's own ``create_pool`` gives a worker's client (for a
    Sentinel-run Redis, a client that asks the sentinels for the master); ``connection`` adds
    options of the connections (timeouts, retries). It does not connect yet.
    """
    identity = {
        "db": options.database,
        "username": options.username,
        "password": options.password,
        "socket_connect_timeout": options.conn_timeout,
        "retry": options.retry,
        "retry_on_timeout": options.retry_on_timeout,
        "retry_on_error": list(options.retry_on_error or []),
        **connection,
    }
    if options.sentinel:
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(options.host, ssl=options.ssl, **identity)  # type: ignore[no-untyped-call]
        client: R = sentinel.master_for(
            options.sentinel_master,
            redis_class=redis_class,
            connection_class=_master_connection_class(),
        )
        return client
    assert isinstance(options.host, str)  # a list of hosts is for sentinels only
    return redis_class(
        host=options.host,
        port=options.port,
        unix_socket_path=options.unix_socket_path,
        ssl=options.ssl,
        ssl_keyfile=options.ssl_keyfile,
        ssl_certfile=options.ssl_certfile,
        ssl_cert_reqs=options.ssl_cert_reqs,
        ssl_ca_certs=options.ssl_ca_certs,
        ssl_ca_data=options.ssl_ca_data,
        ssl_check_hostname=options.ssl_check_hostname,
        max_connections=options.max_connections,
        **identity,
    )


@functools.cache
def _master_connection_class() -> type[Any]:
    """redis-py's connection to a Sentinel-run master, asking the sentinels on every retry.

    redis-py retries a connection's *socket* connect with the connection's retry policy, to
    the address it resolved once: a policy that waits out refused connections would knock on a
    dead master's door forever. Here the socket connect is tried once per address, and the
    policy runs around resolving the master, so each new try asks the sentinels again.
    """
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import SentinelManagedConnection
    from redis.backoff import NoBackoff

    class MasterConnection(SentinelManagedConnection):
        async def connect_to(self, address: tuple[str, int]) -> None:
            policy, self.retry = self.retry, Retry(NoBackoff(), 0)
            try:
                await super().connect_to(address)  # type: ignore[no-untyped-call]
            finally:
                self.retry = policy

    return MasterConnection


async def adopt_retry_policy(redis: Redis, options: RedisOptions | RedisSettings) -> None:
    """Give a client ARQ built for a Sentinel-run Redis the retry policy of ``options``.

    ARQ passes ``RedisSettings.retry`` to plain connections only; a worker calls this at
    start-up so that its connections to a Sentinel-run Redis retry too (a failover is a
    dropped connection, then a new master), asking the sentinels for the master on every try.
    Connections made before are closed and replaced.
    """
    from redis.asyncio.sentinel import SentinelConnectionPool

    pool = redis.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return
    pool.connection_class = _master_connection_class()
    if options.retry is None:
        return
    pool.connection_kwargs.update(
        retry=options.retry,
        retry_on_error=list(options.retry_on_error or []),
        retry_on_timeout=options.retry_on_timeout,
    )
    await pool.disconnect()
    pool.reset()  # type: ignore[no-untyped-call]


async def close_sentinels(redis: Redis) -> None:
    """Close the connections to the sentinels behind ``redis``, if it has any.

    Closing a client closes its connections to the master only; call this after it.
    """
    from redis.asyncio.sentinel import SentinelConnectionPool

    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()
