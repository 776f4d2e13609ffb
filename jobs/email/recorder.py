"""Writing each e-mail's outcome as soon as it is known, several to a transaction.

Delivery hands every outcome to :meth:`OutcomeRecorder.record` the moment the server answered,
and hands a message over (DATA) only while fewer than ``EMAIL_SEND_CONCURRENCY`` handed-over
messages wait for their outcome to be written (:func:`jobs.email.smtp.deliver`): a worker killed
mid-sweep re-sends at most that many e-mails, each with its ``Message-ID``. Writes are group
commits: while one transaction runs, the outcomes that arrive meanwhile gather, and the next
transaction writes them all, on a connection kept while outcomes keep coming (no pool check-out
per transaction). A write that fails is tried again while the claim's lease lasts, unless the
database is unreachable: then the writer has kept the outcomes in Redis
(:mod:`jobs.email.kept_outcomes`) and the error ends the delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobs.db.outage import is_database_unreachable
from jobs.email.leases import Held
from jobs.email.outbox import Outcome

__all__ = ["OutcomeRecorder"]

logger = logging.getLogger(__name__)

#: Seconds before a failed write is tried again (doubling, at most 2 s).
RETRY_DELAY = 0.1


#: Writes outcomes in one transaction, on the connection given (or one of its own if None).
Write = Callable[[list[Outcome], AsyncConnection | None], Awaitable[None]]


class OutcomeRecorder:
    """Writes the outcomes of one claim's e-mails back to their rows as they come."""

    def __init__(self, held: Held, engine: AsyncEngine, write: Write) -> None:
        self.held = held
        self.engine = engine
        self.write = write
        self._connection: AsyncConnection | None = None
        self._pending: list[Outcome] = []
        self._written: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        #: Transactions written, for tests and benchmarks.
        self.transactions = 0

    def record(self, outcome: Outcome) -> asyncio.Future[None]:
        """Have ``outcome`` written; the future is done once it is committed."""
        self._pending.append(outcome)
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        return asyncio.shield(written)  # a waiter cancelled does not cancel the others

    async def _write_pending(self) -> None:
        # outcomes handed in while the connection closes are written before the task ends:
        # no await between the last look at ``_pending`` and the end, when record() starts anew
        while self._pending:
            try:
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
            finally:
                await self._close()

    async def _connect(self) -> AsyncConnection | None:
        """The kept connection; None if none can be had (the write then reports why)."""
        if self._connection is None:
            try:
                self._connection = await self.engine.connect()
            except Exception:  # the write opens its own, and keeps the outcomes if it cannot
                return None
        return self._connection

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:  # a broken connection: the pool discards it
                logger.debug("closing the outcome connection failed: %s", type(exc).__name__)

    async def _write(self, batch: list[Outcome]) -> None:
        delay = RETRY_DELAY
        while True:
            try:
                await self.write(batch, await self._connect())
            except Exception as exc:
                await self._close()
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
