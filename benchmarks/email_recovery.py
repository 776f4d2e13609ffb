"""E-mails lost, duplicated and delayed when an e-mail worker is SIGKILLed mid-delivery.

Three scenarios, each with real worker processes (``arq jobs.email.WorkerSettings``), a real
SMTP server slowed down, and the default claim settings unless ``--env`` overrides them:

* ``sweep``: 60 e-mails, the worker killed after 20 arrived; a new worker starts and the
  sweep is enqueued again (as the cron would);
* ``send``: the worker killed while ``send_email``'s message is in SMTP; a new worker starts
  and ARQ runs the job again when its in-progress key expires;
* ``send-rerun``: the same, the in-progress key deleted at the kill (ARQ runs the job again at
  once, as with a short in-progress lease).

    python -m benchmarks.email_recovery [--within 150] [--env EMAIL_CLAIM_LEASE=60] \
        [--redis-url redis://127.0.0.1:6379/8] [--database-url URL]

Redis's database (8 unless ``--redis-url``) is flushed; the default database is a fresh SQLite
file.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import delete

from jobs.db import create_engine, create_session_factory, upgrade
from jobs.db.models import OutboundEmail
from jobs.settings import load_settings
from tests.outbox_faults import Recovery, kill_mid_send, kill_mid_sweep
from tests.smtp_server import SmtpServer

REDIS_URL = "redis://127.0.0.1:6379/8"
SCENARIOS = ("sweep", "send", "send-rerun")


async def run(
    scenario: str, within: float, env: dict[str, str], redis_url: str, database_url: str | None
) -> Recovery:
    """Run one scenario on an empty outbox and a flushed Redis database."""
    with tempfile.TemporaryDirectory() as tmp, SmtpServer() as smtp:
        settings = load_settings(
            database_url=database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'jobs.db'}",
            redis_url=redis_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            otel_sdk_disabled=True,
            data_dir=Path(tmp),
        )
        redis = Redis.from_url(redis_url)
        await redis.flushdb()
        await redis.aclose()
        engine = create_engine(settings)
        await upgrade(engine)
        sessions = create_session_factory(engine)
        async with sessions.begin() as session:
            await session.execute(delete(OutboundEmail))
        try:
            if scenario == "sweep":
                smtp.handler.data_delay = 0.05
                return await kill_mid_sweep(
                    settings, sessions, Path(tmp), smtp, within=within, env=env
                )
            smtp.handler.data_delay = 2.0
            return await kill_mid_send(
                settings,
                sessions,
                Path(tmp),
                smtp,
                within=within,
                rerun_at_once=scenario == "send-rerun",
                env=env,
            )
        finally:
            await engine.dispose()


async def main(
    scenarios: list[str], within: float, env: dict[str, str], redis_url: str, db: str | None
) -> None:
    """Run each scenario and print one line of figures per scenario."""
    print(f"waiting at most {within:g} s after each kill; worker environment: {env or 'defaults'}")
    for scenario in scenarios:
        recovery = await run(scenario, within, env, redis_url, db)
        print(recovery.line(scenario), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"of {', '.join(SCENARIOS)}; default: all")
    parser.add_argument("--within", type=float, default=150.0)
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the workers")
    parser.add_argument("--redis-url", default=REDIS_URL, help="its database is flushed")
    parser.add_argument("--database-url", help="default: a new SQLite file")
    arguments = parser.parse_args()
    environment = dict(item.split("=", 1) for item in arguments.env)
    unknown = set(arguments.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {sorted(unknown)[0]!r}")
    asyncio.run(
        main(
            arguments.scenarios or list(SCENARIOS),
            arguments.within,
            environment,
            arguments.redis_url,
            arguments.database_url,
        )
    )
