"""E-mail worker processes SIGKILLed mid-delivery: nothing lost, few and recognisable repeats.

Real ``arq jobs.email.WorkerSettings`` processes, a slowed SMTP server and a 4 s claim lease
(the default is 60 s) to keep the tests short — and a 2 s job lease (``WORKER_LEASE_SECONDS``)
for ARQ to run the killed ``send_email`` again; ``python -m benchmarks.email_recovery`` measures
the same scenarios with the defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.settings import Settings
from tests.outbox_faults import kill_mid_send, kill_mid_sweep
from tests.smtp_server import SmtpServer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("engine", "redis_url")]
LEASE = 4.0
CONCURRENCY = 4
WORKER_ENV = {"EMAIL_CLAIM_LEASE": str(LEASE), "EMAIL_SEND_CONCURRENCY": str(CONCURRENCY)}


async def test_a_worker_killed_mid_sweep_loses_nothing_and_resends_only_what_was_in_smtp(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Killed after 20 of 60: all sent within a lease, ≤ concurrency repeats, same Message-ID."""
    smtp_server.handler.data_delay = 0.05
    recovery = await kill_mid_sweep(
        settings, sessions, tmp_path, smtp_server, within=LEASE + 30, env=WORKER_ENV
    )
    print(recovery.line("killed mid-sweep"))
    assert recovery.lost == 0
    assert recovery.duplicates <= CONCURRENCY
    assert recovery.duplicates_keep_their_message_id
    assert recovery.kill_to_delivery is not None
    assert recovery.kill_to_delivery < recovery.kill_to_restart + LEASE + 10


async def test_a_worker_killed_during_send_email_sends_it_once_the_lease_ends(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Killed mid-SMTP: run again by ARQ (2 s job lease), send_email outwaits the claim, sends."""
    smtp_server.handler.data_delay = 2.0
    recovery = await kill_mid_send(
        settings,
        sessions,
        tmp_path,
        smtp_server,
        within=LEASE + 30,
        env={**WORKER_ENV, "WORKER_LEASE_SECONDS": "2"},
    )
    print(recovery.line("killed during send_email"))
    assert recovery.lost == 0
    assert recovery.duplicates <= 1
    assert recovery.duplicates_keep_their_message_id
    assert recovery.kill_to_delivery is not None
    assert recovery.kill_to_delivery < recovery.kill_to_restart + LEASE + 10
