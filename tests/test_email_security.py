"""SMTP with STARTTLS and a login, as production relays require, against a real server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import EmailStatus, OutboundEmail
from jobs.email import process_email_queue, queue_email
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.smtp_server import RecordingHandler, free_port

pytestmark = pytest.mark.usefixtures("engine")
USER, PASSWORD = "mailer", "correct-horse-battery"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    """Accept only USER with PASSWORD."""
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False makes aiosmtpd answer a refusal with 535 itself
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def secure_server(tmp_path: Path) -> Iterator[tuple[RecordingHandler, int, Path]]:
    """An SMTP server that demands STARTTLS and then a login."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, port = RecordingHandler(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield handler, port, cert
    controller.stop()


def starttls(settings: Settings, port: int, password: str, ca_file: Path | None) -> Settings:
    """Settings for the secure server: STARTTLS, a login, and optionally our CA."""
    return settings.model_copy(
        update={
            "smtp_port": port,
            "smtp_tls": "starttls",
            "smtp_ca_file": ca_file,
            "smtp_username": USER,
            "smtp_password": SecretStr(password),
        }
    )


async def sweep(pool: JobsPool, settings: Settings) -> None:
    """Run one outbox sweep in a worker with ``settings``."""
    await pool.enqueue_job("process_email_queue")
    await run_burst(await make_worker(settings, [process_email_queue]))


async def test_starttls_and_login_deliver_and_a_wrong_password_fails_nothing(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    secure_server: tuple[RecordingHandler, int, Path],
) -> None:
    """STARTTLS with SMTP_CA_FILE and a login delivers; a bad password keeps the mail queued."""
    handler, port, cert = secure_server
    async with sessions.begin() as session:
        for address in ("a@example.com", "b@example.com", "c@example.com"):
            await queue_email(session, to=address, subject="s", text="t")
    await sweep(pool, starttls(settings, port, "wrong-password", cert))
    async with sessions() as session:
        rows = list(await session.scalars(select(OutboundEmail)))
    assert handler.messages == []
    assert {(r.status, r.attempts) for r in rows} == {(EmailStatus.QUEUED, 0)}
    assert all(r.last_error and r.last_error.startswith("server: 535") for r in rows)
    assert all("wrong-password" not in (r.last_error or "") for r in rows)

    async with sessions.begin() as session:
        for row in rows:
            row.next_attempt_at = dt.datetime.now(dt.UTC)
            session.add(row)
    await sweep(pool, starttls(settings, port, PASSWORD, cert))
    assert sorted(str(m["To"]) for m in handler.messages) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


async def test_untrusted_certificate_is_refused_without_failing_mail(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    secure_server: tuple[RecordingHandler, int, Path],
) -> None:
    """Without SMTP_CA_FILE the self-signed server is not trusted: nothing is sent or failed."""
    handler, port, _ = secure_server
    async with sessions.begin() as session:
        await queue_email(session, to="a@example.com", subject="s", text="t")
    await sweep(pool, starttls(settings, port, PASSWORD, ca_file=None))
    async with sessions() as session:
        [row] = list(await session.scalars(select(OutboundEmail)))
    assert handler.messages == []
    assert (row.status, row.attempts) == (EmailStatus.QUEUED, 0)
    assert row.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in row.last_error
