"""Outbox claims held by one worker, renewed together while the worker lives.

A worker keeps one :class:`ClaimKeeper` per database (per session factory). Every claim its
jobs hold is registered with it (:meth:`ClaimKeeper.hold`), and every third of the lease
(``EMAIL_CLAIM_LEASE``) one ``UPDATE`` renews all of them. When the worker dies, renewals stop
and its rows are claimable again within one lease. A holder starts sending an e-mail only while
at least a third of its lease is left (:meth:`Held.sendable`), so a worker whose renewals stall
(a database outage, a blocked event loop) stops sending before its rows can be taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.email.outbox import renew_claims

__all__ = ["ClaimKeeper", "Held", "claim_keeper"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """One claim registered with its worker's keeper."""

    keeper: ClaimKeeper
    token: str

    @property
    def lease_end(self) -> float:
        """``time.monotonic()`` at which the claim runs out unless renewed (0 once released)."""
        return self.keeper.lease_end(self.token)

    def sendable(self) -> bool:
        """Whether at least a third of the lease is left: safe to start sending another e-mail."""
        return time.monotonic() < self.lease_end - self.keeper.lease / 3


class ClaimKeeper:
    """The claims one worker holds on one database, renewed in one statement."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], lease: float) -> None:
        self.sessions = sessions
        self.lease = lease
        self._ends: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def lease_end(self, token: str) -> float:
        """When the claim under ``token`` runs out, in ``time.monotonic()`` terms."""
        return self._ends.get(token, 0.0)

    @contextlib.asynccontextmanager
    async def hold(self, token: str, *, since: float) -> AsyncIterator[Held]:
        """Keep the claim under ``token`` (made at monotonic time ``since``) renewed inside."""
        self._ends[token] = since + self.lease
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._renew_while_held(), name="email-claim-leases")
        try:
            yield Held(self, token)
        finally:
            del self._ends[token]
            self._changed.set()

    async def _renew_while_held(self) -> None:
        due = time.monotonic() + self.lease / 3
        while self._ends:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                # woken early when a claim is released, to stop once none is held
                await asyncio.wait_for(self._changed.wait(), max(0.0, due - time.monotonic()))
            if self._ends and time.monotonic() >= due:
                due = time.monotonic() + self.lease / 3
                await self.renew()

    async def renew(self) -> None:
        """Renew every claim still held and not yet run out, in one statement."""
        started = time.monotonic()
        tokens = [token for token, end in self._ends.items() if end > started]
        if not tokens:
            return
        try:
            async with asyncio.timeout(self.lease / 3):
                async with self.sessions.begin() as session:
                    await renew_claims(session, tokens, self.lease)
        except Exception as exc:  # the next round tries again; sends stop in time meanwhile
            logger.warning(
                "could not renew %d e-mail claims: %s: %s", len(tokens), type(exc).__name__, exc
            )
            return
        for token in tokens:
            if self._ends.get(token, 0.0) > started:
                self._ends[token] = started + self.lease


_KEEPERS: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], ClaimKeeper] = (
    weakref.WeakKeyDictionary()
)


def claim_keeper(sessions: async_sessionmaker[AsyncSession], lease: float) -> ClaimKeeper:
    """The keeper of the claims made through ``sessions`` in this process."""
    keeper = _KEEPERS.get(sessions)
    if keeper is None or keeper.lease != lease:
        keeper = _KEEPERS[sessions] = ClaimKeeper(sessions, lease)
    return keeper
