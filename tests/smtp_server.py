"""A real SMTP server for the tests (aiosmtpd), with replies chosen by recipient address.

* a recipient containing ``tempfail`` gets ``451`` on RCPT (try again later);
* ``tempfail-once`` gets ``451`` the first time only;
* a recipient containing ``reject`` gets ``550`` (permanent).
Every accepted message is parsed and kept in ``messages``. Like Postfix, Exchange or Gmail, the
server refuses a message with a line longer than RFC 5321's 1,000 octets (998 characters and
CRLF) with ``500 Line too long``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections import Counter
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

#: RFC 5321 4.5.3.1.6: a line of text, CRLF included, is at most 1,000 octets.
MAX_LINE_OCTETS = 1000


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RecordingHandler:
    """aiosmtpd handler that records messages and refuses some recipients on purpose."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        #: Seconds each DATA takes, to make deliveries overlap in concurrency tests.
        self.data_delay = 0.0
        self.refusals: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        """Accept, defer or refuse one recipient."""
        with self.lock:
            if "tempfail-once" in address and not self.refusals[address]:
                self.refusals[address] += 1
                return "451 4.3.0 mailbox busy, try later"
            if "tempfail" in address and "tempfail-once" not in address:
                self.refusals[address] += 1
                return "451 4.3.0 mailbox busy, try later"
            if "reject" in address:
                self.refusals[address] += 1
                return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the parsed message."""
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        """The Message-ID header of every accepted message, in arrival order."""
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


class StrictSMTP(SMTP):
    """aiosmtpd's SMTP session with the RFC line limit (aiosmtpd allows one octet more)."""

    line_length_limit = MAX_LINE_OCTETS


class StrictController(Controller):
    """A controller whose sessions enforce the RFC line limit."""

    def factory(self) -> SMTP:
        """A :class:`StrictSMTP` session."""
        return StrictSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """An aiosmtpd server on a free loopback port, in its own thread."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = StrictController(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        """Messages received so far."""
        with self.handler.lock:
            return list(self.handler.messages)
