"""REDIS_URL as operators write it: one reading for producers and workers, TLS verified."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from arq.connections import create_pool as arq_create_pool
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.client import create_pool
from jobs.errors import ConfigurationError
from jobs.redis_connection import redis_settings, redis_url_for_display
from jobs.settings import Settings, load_settings
from tests.processes import WorkerProcess, worker_environment
from tests.redis_servers import CertificateAuthority, RedisProcess
from tests.smtp_server import SmtpServer

PASSWORD = "p@ss:w/rd%20?#"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379", {"host": "localhost", "port": 6379, "database": 0}),
        (
            f"redis://:{quote(PASSWORD, safe='')}@cache:7000/3",
            {"host": "cache", "port": 7000, "database": 3, "password": PASSWORD},
        ),
        ("redis://u%40x:pw@cache?db=5", {"username": "u@x", "password": "pw", "database": 5}),
        (
            "rediss://cache/1?ssl_ca_certs=/etc/ca.pem",
            {"ssl": True, "ssl_ca_certs": "/etc/ca.pem", "ssl_check_hostname": True},
        ),
        ("rediss://cache?ssl_check_hostname=false", {"ssl": True, "ssl_check_hostname": False}),
        (
            "rediss://cache?ssl_cert_reqs=none",
            {"ssl_cert_reqs": "none", "ssl_check_hostname": False},
        ),
        ("unix:///run/redis.sock?db=2", {"unix_socket_path": "/run/redis.sock", "database": 2}),
        (
            "redis+sentinel://:pw@s1:26380,s2,[::1]:26381/cache-master/4",
            {
                "sentinel": True,
                "host": [("s1", 26380), ("s2", 26379), ("::1", 26381)],
                "sentinel_master": "cache-master",
                "database": 4,
                "password": "pw",
            },
        ),
    ],
)
def test_urls_become_the_options_both_sides_connect_with(
    url: str, expected: dict[str, object]
) -> None:
    """Percent-encoded credentials are decoded; TLS options read; host names checked by default."""
    options = redis_settings(url)
    assert {name: getattr(options, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://cache", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL"),
        ("redis://:hunter2@cache?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("redis://:hunter2@cache?ssl_ca_certs=/ca.pem", "ssl_ca_certs needs a rediss:// URL"),
        ("rediss://cache?ssl_cert_reqs=none&ssl_check_hostname=true", "needs ssl_cert_reqs"),
        ("redis://:hunter2@a,b", "several hosts need a redis+sentinel:// URL"),
        ("redis+sentinel://:hunter2@a,b", "needs the master's name"),
        ("redis://cache:99999", "port '99999' is not a port number"),
    ],
)
def test_a_url_that_cannot_work_stops_start_up_naming_redis_url(url: str, problem: str) -> None:
    """REDIS_URL errors name the setting and the problem, never the password."""
    with pytest.raises(ConfigurationError) as raised:
        load_settings(redis_url=url)
    assert str(raised.value).startswith("invalid configuration: REDIS_URL: ")
    assert problem in str(raised.value) and "hunter2" not in str(raised.value)


def test_urls_are_shown_without_their_password() -> None:
    """Messages name the Redis they could not reach with the password replaced."""
    assert redis_url_for_display("redis://u:p%40ss@h:1/0") == "redis://u:***@h:1/0"
    assert redis_url_for_display("redis+sentinel://:pw@a,b/m") == "redis+sentinel://:***@a,b/m"


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    """A private CA in the test's directory."""
    return CertificateAuthority(tmp_path)


def tls_redis(directory: Path, authority: CertificateAuthority, host: str) -> RedisProcess:
    """A TLS-only redis-server presenting a certificate for ``host``, requiring PASSWORD."""
    cert, key = authority.issue(host)
    server = RedisProcess(directory / host)
    server.arguments = [
        "--port",
        "0",
        "--tls-port",
        str(server.port),
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(authority.path),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        PASSWORD,
    ]
    return server.start()


@pytest.fixture
def tls_server(tmp_path: Path, authority: CertificateAuthority) -> Iterator[RedisProcess]:
    """A TLS redis-server whose certificate names localhost."""
    server = tls_redis(tmp_path, authority, "localhost")
    yield server
    server.stop()


def tls_url(server: RedisProcess, authority: CertificateAuthority, extra: str = "") -> str:
    """The URL an operator writes: password percent-encoded, the private CA as a query option."""
    return (
        f"rediss://:{quote(PASSWORD, safe='')}@localhost:{server.port}/0"
        f"?ssl_ca_certs={authority.path}{extra}"
    )


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_producer_and_worker_process_share_a_tls_url_with_an_encoded_password(
    settings: Settings,
    tls_server: RedisProcess,
    authority: CertificateAuthority,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """A rediss:// URL with ssl_ca_certs and a percent-encoded password works on both sides."""
    tls_settings = settings.model_copy(update={"redis_url": tls_url(tls_server, authority)})
    pool = await create_pool(tls_settings)
    worker = WorkerProcess("email", worker_environment(tls_settings), tmp_path).start()
    try:
        await worker.wait_ready()
        job = await pool.enqueue_job(
            "send_email", to="tls@example.com", subject="Over TLS", text="x"
        )
        assert job is not None
        assert (await job.result(timeout=30))["status"] == "sent"
    finally:
        await pool.aclose()
        exit_code = worker.stop()
    assert exit_code == 0, worker.output[-3000:]
    assert [m["Subject"] for m in smtp_server.messages] == ["Over TLS"]


async def test_a_certificate_for_another_host_is_refused_unless_checking_is_turned_off(
    tmp_path: Path, authority: CertificateAuthority
) -> None:
    """A server presenting evil.example's (CA-signed) certificate as localhost is refused by both.

    ``ssl_check_hostname=false`` in the URL is the explicit way to accept it.
    """
    evil = tls_redis(tmp_path, authority, "evil.example")
    try:
        url = tls_url(evil, authority)
        with pytest.raises(RedisConnectionError, match="Hostname mismatch"):
            await create_pool(load_settings(redis_url=url))
        options = redis_settings(url)
        options.conn_retries = 0
        with pytest.raises((RedisConnectionError, ssl.SSLError), match="Hostname mismatch"):
            await arq_create_pool(options)  # what `arq jobs.<family>.WorkerSettings` does
        unchecked = await create_pool(
            load_settings(redis_url=tls_url(evil, authority, "&ssl_check_hostname=false"))
        )
        assert await unchecked.ping()
        await unchecked.aclose()
    finally:
        evil.stop()


async def test_an_unknown_authority_is_refused(tmp_path: Path, tls_server: RedisProcess) -> None:
    """Without ssl_ca_certs the private CA is not trusted: no connection, a clear error."""
    url = f"rediss://:{quote(PASSWORD, safe='')}@localhost:{tls_server.port}/0"
    started = time.monotonic()
    with pytest.raises(RedisConnectionError, match="certificate verify failed"):
        await asyncio.wait_for(create_pool(load_settings(redis_url=url)), 30)
    assert time.monotonic() - started < 30
