"""A Sentinel-run Redis (master, replica, three sentinels) failing over while jobs run."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from arq.connections import create_pool as arq_create_pool
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs import JobsPool
from jobs.client import create_pool
from jobs.redis_connection import adopt_retry_policy, close_sentinels, redis_settings
from jobs.settings import Settings
from tests.processes import WorkerProcess, worker_environment
from tests.redis_servers import RedisProcess
from tests.smtp_server import SmtpServer

MASTER_NAME = "jobs-master"


@dataclass
class SentinelCluster:
    """The processes of one Sentinel-run Redis."""

    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]

    @property
    def url(self) -> str:
        """``REDIS_URL`` for this cluster."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def stop(self) -> None:
        """Stop every process."""
        for process in [*self.sentinels, self.replica, self.master]:
            process.stop()

    async def master_port(self) -> int:
        """The master's port as the first sentinel that answers reports it."""
        for sentinel in self.sentinels:
            client = Redis(port=sentinel.port, socket_timeout=1)
            try:
                _, port = await client.sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(port)
            except (RedisError, OSError, TypeError):
                continue
            finally:
                await client.aclose()
        raise AssertionError("no sentinel answers")


async def _wait_for(condition: object, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A master, its replica, and three sentinels (quorum 2) watching them, on free ports."""
    master = RedisProcess(tmp_path / "master").start()
    replica = RedisProcess(
        tmp_path / "replica", ["--replicaof", "127.0.0.1", str(master.port)]
    ).start()
    sentinels = [
        RedisProcess(
            tmp_path / f"sentinel-{index}",
            [
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                f"sentinel failover-timeout {MASTER_NAME} 3000",
            ],
            sentinel=True,
        ).start()
        for index in range(3)
    ]
    running = SentinelCluster(master, replica, sentinels)

    async def replicated() -> bool:
        client = Redis(port=replica.port)
        try:
            info = await client.info("replication")
            return info.get("master_link_status") == "up"
        finally:
            await client.aclose()

    async def replica_known() -> bool:
        client = Redis(port=sentinels[0].port)
        try:
            return bool(await client.sentinel_slaves(MASTER_NAME))
        finally:
            await client.aclose()

    try:
        await _wait_for(replicated, "the replica to sync")
        await _wait_for(replica_known, "the sentinels to see the replica")
        yield running
    finally:
        running.stop()


async def _enqueue(pool: JobsPool, subject: str) -> None:
    """Enqueue one e-mail under a fixed id, retrying while Redis fails over."""
    deadline = time.monotonic() + 60
    while True:
        try:
            await pool.enqueue_job(
                "send_email", _job_id=subject, to="ha@example.com", subject=subject, text="x"
            )
            return
        except (RedisError, OSError):
            assert time.monotonic() < deadline, f"{subject} could not be enqueued in 60 s"
            await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_after_the_master_dies_producer_and_worker_follow_the_new_master(
    settings: Settings,
    cluster: SentinelCluster,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Kill the master: the replica takes over, and every e-mail queued before or after is sent.

    A worker that lost its connection is started again, as its supervisor would.
    """
    ha_settings = settings.model_copy(update={"redis_url": cluster.url})
    pool = await create_pool(ha_settings)
    env = worker_environment(ha_settings)
    worker = WorkerProcess("email", env, tmp_path).start()
    subjects = [f"mail-{n:02d}" for n in range(20)]
    restarts = 0
    try:
        await worker.wait_ready()
        for subject in subjects[:10]:
            await _enqueue(pool, subject)
        await _wait_for(lambda: _delivered(smtp_server, 10), "the first e-mails")
        old_master = cluster.master.port
        killed = time.monotonic()
        cluster.master.kill()
        for subject in subjects[10:]:
            await _enqueue(pool, subject)
        enqueued_after = time.monotonic() - killed
        deadline = time.monotonic() + 60
        while not await _delivered(smtp_server, len(subjects)):
            assert time.monotonic() < deadline, "not every e-mail was sent"
            if worker.exit_code is not None:
                restarts += 1
                worker = WorkerProcess("email", env, tmp_path).start()
            await asyncio.sleep(0.1)
        recovered = time.monotonic() - killed
        assert await cluster.master_port() == cluster.replica.port != old_master
    finally:
        await pool.aclose()
        worker.stop()
    sent = Counter(m["Subject"] for m in smtp_server.messages)
    assert sorted(sent) == subjects
    duplicates = sum(count - 1 for count in sent.values())
    print(
        f"failover: producer enqueued again after {enqueued_after:.1f}s, all sent after "
        f"{recovered:.1f}s, {duplicates} duplicate(s), {restarts} worker restart(s)"
    )


async def _delivered(smtp_server: SmtpServer, count: int) -> bool:
    return len({m["Subject"] for m in smtp_server.messages}) >= count


async def test_a_worker_client_retries_through_a_failover_with_the_policy_it_was_given(
    cluster: SentinelCluster,
) -> None:
    """ARQ drops RedisSettings.retry for Sentinel; adopted at start-up, it rides a failover.

    The policy waits for Redis as long as it takes (refused connections included), and every
    new try asks the sentinels again instead of retrying the dead master's address.
    """
    options = dataclasses.replace(
        redis_settings(cluster.url),
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=10_000),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
    )
    bare = await arq_create_pool(options)
    adopted = await arq_create_pool(options)
    await adopt_retry_policy(adopted, options)
    try:
        await adopted.set("before", "1")
        assert await adopted.execute_command("WAIT", 1, 5000) == 1  # on the replica too
        cluster.master.kill()
        with pytest.raises(RedisConnectionError):
            await bare.set("during", "1")
        await asyncio.wait_for(adopted.set("during", "1"), 30)
        assert await adopted.get("before") == b"1"
        assert await cluster.master_port() == cluster.replica.port
    finally:
        for client in (bare, adopted):
            await client.aclose()
            await close_sentinels(client)
