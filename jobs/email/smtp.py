"""Delivering claimed e-mails over SMTP with a few reused connections.

Each delivery lane holds one SMTP connection and sends its share of the batch over it. Per
message: a 2xx reply is sent; a 4xx reply (or a dropped connection) is tried again later with
backoff; a 5xx reply, or an address that cannot be sent to, fails that message with the
server's reply. One bad message never stops the others. When the server itself cannot be
reached, secured (TLS/STARTTLS) or logged in to, the batch goes back to the outbox without an
attempt counted, so a misconfiguration never fails messages for good. Each outcome is recorded
before its lane sends the next message (:mod:`jobs.email.recorder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence

import aiosmtplib
from opentelemetry.trace import SpanKind, Status, StatusCode

from jobs.db.models import EmailStatus, OutboundEmail, utcnow
from jobs.email.message import build_message, message_id
from jobs.email.outbox import Outcome
from jobs.retry import RetryPolicy
from jobs.settings import Settings
from jobs.telemetry import tracer

__all__ = ["Record", "ServerUnavailable", "deliver"]

logger = logging.getLogger(__name__)

#: The longest an e-mail waits between two delivery attempts.
MAX_RETRY_DELAY = 6 * 3600.0


def _retry_at(settings: Settings, attempts: int) -> dt.datetime:
    backoff = RetryPolicy(
        max_tries=settings.email_max_attempts,
        backoff_base=settings.email_retry_base_seconds,
        backoff_max=MAX_RETRY_DELAY,
    )
    return utcnow() + dt.timedelta(seconds=backoff.delay(max(1, attempts)))


def _transient(
    settings: Settings, email: OutboundEmail, error: str, reply_code: int | None = None
) -> Outcome:
    attempts = email.attempts + 1
    if attempts >= settings.email_max_attempts:
        return Outcome(
            email.id,
            EmailStatus.FAILED,
            attempts,
            f"gave up after {attempts} attempts: {error}",
            reply_code=reply_code,
        )
    retry_at = _retry_at(settings, attempts)
    return Outcome(email.id, EmailStatus.QUEUED, attempts, error, retry_at, reply_code)


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}"


def _refused(
    settings: Settings, email: OutboundEmail, reply: aiosmtplib.SMTPResponseException
) -> tuple[Outcome, str]:
    """A 4xx reply is tried again later; a 5xx reply fails (bounces) the message."""
    if 400 <= reply.code < 500:
        return _transient(settings, email, _reply(reply), reply.code), str(reply.code)
    outcome = Outcome(
        email.id, EmailStatus.FAILED, email.attempts + 1, _reply(reply), reply_code=reply.code
    )
    return outcome, str(reply.code)


def _release(settings: Settings, email: OutboundEmail, reason: str) -> Outcome:
    """Put an e-mail back without counting an attempt: the server, not the message, failed."""
    retry_at = utcnow() + dt.timedelta(seconds=settings.email_retry_base_seconds)
    return Outcome(email.id, EmailStatus.QUEUED, email.attempts, f"server: {reason}", retry_at)


#: Awaited before a message is handed over (DATA).
Ready = Callable[[], Awaitable[None]]


async def _nothing_to_wait_for() -> None:
    return None


class ServerUnavailable(Exception):
    """Connecting, securing or logging in to the SMTP server failed."""


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_tls == "none":
        return None
    return ssl.create_default_context(cafile=settings.smtp_ca_file)


class _Lane:
    """One SMTP connection, opened on first use and reopened after it drops.

    If the server cannot be reached, secured or logged in to, the lane stops: its e-mail goes
    back to the outbox without an attempt counted (a wrong password must not fail messages).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None
        self.unavailable: str | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            tls_context=_tls_context(settings),
        )
        try:
            await client.connect()
            if settings.smtp_username and settings.smtp_password:
                await client.login(
                    settings.smtp_username, settings.smtp_password.get_secret_value()
                )
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise ServerUnavailable(_reply(exc)) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return client

    async def send(self, email: OutboundEmail, ready: Ready | None = None) -> Outcome:
        """Deliver one e-mail in a CLIENT span: server, port, reply code and Message-ID only.

        ``ready`` is awaited after the envelope (MAIL, RCPT) and before the message (DATA).
        """
        settings = self.settings
        with tracer().start_as_current_span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={
                "server.address": settings.smtp_host,
                "server.port": settings.smtp_port,
                "network.protocol.name": "smtp",
                "email.message.id": message_id(email, settings.smtp_from),
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            outcome, error_type = await self._send(email, ready or _nothing_to_wait_for)
            if outcome.reply_code is not None:
                span.set_attribute("smtp.response.status_code", outcome.reply_code)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, (outcome.error or "")[:200]))
            return outcome

    async def _send(self, email: OutboundEmail, ready: Ready) -> tuple[Outcome, str | None]:
        """The outcome, and the error type unless the message was accepted."""
        settings = self.settings
        try:
            if self.client is None or not self.client.is_connected:
                self.client = await self._connect()
        except ServerUnavailable as exc:
            self.unavailable = str(exc)
            logger.error(
                "SMTP server %s:%s unavailable: %s", settings.smtp_host, settings.smtp_port, exc
            )
            return _release(settings, email, str(exc)), "ServerUnavailable"
        client = self.client
        try:
            message = build_message(email, settings.smtp_from)
            await client.mail(settings.smtp_from)
            await client.rcpt(email.to_address)
        except Exception as exc:
            return await self._failed(email, exc)
        # the envelope overlaps the recording of the lane's previous e-mail; the message can
        # only be accepted once that is recorded
        await ready()
        try:
            await client.data(message)
        except Exception as exc:
            return await self._failed(email, exc)
        return Outcome(email.id, EmailStatus.SENT, email.attempts + 1, reply_code=250), None

    async def _failed(self, email: OutboundEmail, exc: Exception) -> tuple[Outcome, str]:
        """The outcome of a send that raised ``exc`` (re-raised if not about this message)."""
        settings = self.settings
        error_type = type(exc).__qualname__
        if isinstance(
            exc,
            (
                aiosmtplib.SMTPServerDisconnected,
                aiosmtplib.SMTPConnectError,
                aiosmtplib.SMTPTimeoutError,
                OSError,
            ),
        ):
            await self.close()
            return _transient(settings, email, f"connection: {error_type}: {exc}"), error_type
        if not isinstance(exc, (ValueError, aiosmtplib.SMTPException)):
            raise exc
        await self._reset()
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return _refused(settings, email, exc)
        outcome = Outcome(email.id, EmailStatus.FAILED, email.attempts + 1, f"{error_type}: {exc}")
        return outcome, error_type

    async def _reset(self) -> None:
        """Clear a half-sent envelope so the connection serves the next message."""
        if self.client is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self.client.rset()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


#: Has one outcome written; the future is done once it is recorded.
Record = Callable[[Outcome], "asyncio.Future[None]"]


def _always() -> bool:
    return True


async def deliver(
    settings: Settings,
    emails: Sequence[OutboundEmail],
    *,
    record: Record,
    sendable: Callable[[], bool] = _always,
) -> list[Outcome]:
    """Send ``emails`` over at most ``EMAIL_SEND_CONCURRENCY`` connections; one outcome each.

    Every outcome is recorded (``record``) as soon as it is known, and a message is handed
    over (DATA) only while fewer than ``EMAIL_SEND_CONCURRENCY`` handed-over messages wait for
    their outcome to be recorded: a kill leaves at most that many sent and not recorded. The
    envelope (MAIL, RCPT) and the next message's preparation overlap the writes.
    Lanes start no e-mail once ``sendable()`` is false (the claim's lease is running out):
    those are left, unrecorded, to whoever takes the claim over, and have no outcome here.
    """
    pending: asyncio.Queue[OutboundEmail] = asyncio.Queue()
    for email in emails:
        pending.put_nowait(email)
    outcomes: list[Outcome] = []
    unavailable: list[str] = []
    failed: list[BaseException] = []
    recordings: list[asyncio.Future[None]] = []
    # one slot per e-mail handed over (DATA) and not yet recorded: never more than the lanes
    slots = asyncio.Semaphore(settings.email_send_concurrency)

    def recorded(holds_slot: bool, recording: asyncio.Future[None]) -> None:
        if holds_slot:
            slots.release()
        if not recording.cancelled() and recording.exception() is not None:
            failed.append(recording.exception())  # type: ignore[arg-type]

    async def run_lane() -> None:
        lane = _Lane(settings)
        holds_slot = False

        async def take_slot() -> None:
            nonlocal holds_slot
            await slots.acquire()
            holds_slot = True

        try:
            while not pending.empty() and not unavailable and not failed and sendable():
                holds_slot = False
                outcome = await lane.send(pending.get_nowait(), take_slot)
                outcomes.append(outcome)
                recording = record(outcome)
                recording.add_done_callback(functools.partial(recorded, holds_slot))
                recordings.append(recording)
                if lane.unavailable:
                    unavailable.append(lane.unavailable)
        except Exception as exc:
            failed.append(exc)  # the other lanes finish the e-mail in hand, then stop
        finally:
            await lane.close()

    lanes = [
        asyncio.create_task(run_lane())
        for _ in range(min(settings.email_send_concurrency, len(emails)))
    ]
    try:
        await asyncio.gather(*lanes)
    finally:
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
    if unavailable and not failed:
        released = [_release(settings, email, unavailable[0]) for email in _drain(pending)]
        outcomes.extend(released)
        recordings.extend(record(outcome) for outcome in released)
    results = await asyncio.gather(*recordings, return_exceptions=True)
    errors = failed + [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return outcomes


def _drain(pending: asyncio.Queue[OutboundEmail]) -> list[OutboundEmail]:
    emails = []
    while not pending.empty():
        emails.append(pending.get_nowait())
    return emails
