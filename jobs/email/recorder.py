"""Writing each e-mail's outcome as soon as it is known, several to a transaction.

A delivery lane hands the outcome of the e-mail it just sent to :meth:`OutcomeRecorder.record`
and waits until it is written before it sends the next one, so at most one e-mail per lane —
the one in SMTP — is ever sent but unrecorded: a worker killed mid-sweep re-sends at most
``EMAIL_SEND_CONCURRENCY`` e-mails, each with its ``Message-ID``. Writes are group commits:
while one transaction runs, the outcomes that arrive meanwhile gather, and the next
transaction writes them all. A write that fails is tried again while the claim's lease lasts,
unless the database is unreachable: then the writer has kept the outcomes in Redis
(:mod:`jobs.email.kept_outcomes`) and the error ends the delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from jobs.db.outage import is_database_unreachable
from jobs.email.leases import Held
from jobs.email.outbox import Outcome

__all__ = ["OutcomeRecorder"]

logger = logging.getLogger(__name__)

#: Seconds before a failed write is tried again (doubling, at most 2 s).
RETRY_DELAY = 0.1


class OutcomeRecorder:
    """Writes the outcomes of one claim's e-mails back to their rows as they come."""

    def __init__(self, held: Held, write: Callable[[list[Outcome]], Awaitable[None]]) -> None:
        self.held = held
        self.write = write
        self._pending: list[Outcome] = []
        self._written: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        #: Transactions written, for tests and benchmarks.
        self.transactions = 0

    async def record(self, outcome: Outcome) -> None:
        """Write ``outcome``; returns once it is committed."""
        self._pending.append(outcome)
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await asyncio.shield(written)

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            written, self._written = self._written, None
            assert written is not None
            try:
                await self._write(batch)
            except Exception as exc:
                written.set_exception(exc)
            else:
                written.set_result(None)

    async def _write(self, batch: list[Outcome]) -> None:
        delay = RETRY_DELAY
        while True:
            try:
                await self.write(batch)
            except Exception as exc:
                if is_database_unreachable(exc) or time.monotonic() + delay >= self.held.lease_end:
                    raise
                logger.warning(
                    "could not record %d e-mail outcomes, trying again: %s",
                    len(batch),
                    type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
            else:
                self.transactions += 1
                return
