"""What an operator sees: one line when a service is away, JSON log lines, a quick CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from jobs import JobsPool
from jobs.settings import Settings
from tests.conftest import (
    POSTGRES_ADMIN_DB,
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_SERVER,
    postgres_unavailable,
    service_missing,
)
from tests.smtp_server import free_port
from tests.test_observability_process import start_worker, stop_worker
from tests.test_worker_process import ARQ, worker_environment

JOBS = [sys.executable, "-m", "jobs"]
#: Modules ``python -m jobs --help`` must not load: they are what makes start-up slow.
HEAVY_MODULES = ("opentelemetry.sdk", "sqlalchemy", "arq", "redis", "alembic", "httpx")

# Process-level behaviour; SQLite keeps the working database simple where one is needed.
ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def broken(settings: Settings, outage: str) -> dict[str, str]:
    """The environment of a command run while ``outage`` holds."""
    env = worker_environment(settings)
    if outage == "redis down":
        env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    elif outage == "postgres down":
        env["DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/jobs"
    else:
        env["DATABASE_URL"] = f"postgresql+asyncpg://{POSTGRES_SERVER}/jobs_no_such_database"
    return env


#: The start of the one line each outage gives, and the variable it tells the operator to check.
EXPECTED = {
    "redis down": ("Redis at redis://127.0.0.1:", "is unreachable", "REDIS_URL"),
    "postgres down": ("PostgreSQL at 127.0.0.1:", "is unreachable", "DATABASE_URL"),
    "no database": (
        f"PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT} has no database 'jobs_no_such_database'",
        "create it",
        "DATABASE_URL",
    ),
}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, capturing what it prints."""
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )


def assert_one_line(result: subprocess.CompletedProcess[str], outage: str) -> None:
    """Exit 1, and apart from JSON log lines, one line on stderr saying what to do."""
    lines = result.stderr.strip().splitlines()
    message = [line for line in lines if not line.startswith("{")]
    assert result.returncode == 1, result.stderr
    assert len(message) == 1, result.stderr
    start, problem, variable = EXPECTED[outage]
    assert message[0].startswith(start) and problem in message[0] and variable in message[0]
    assert "Traceback" not in result.stderr


@ON_SQLITE
@pytest.mark.parametrize(
    ("command", "outage"),
    [
        ("enqueue send_email to=a@example.com subject=s text=t", "redis down"),
        ("status", "redis down"),
        ("status", "postgres down"),
        ("status", "no database"),
        ("health", "redis down"),
        ("health --self email", "redis down"),
        ("failed list", "postgres down"),
        ("failed list", "no database"),
        ("migrate", "postgres down"),
        ("migrate", "no database"),
    ],
)
def test_commands_say_in_one_line_what_is_unreachable(
    settings: Settings, tmp_path: Path, command: str, outage: str
) -> None:
    """Each command against an absent service prints one line on stderr and exits 1."""
    result = run([*JOBS, *command.split()], broken(settings, outage), tmp_path)
    assert_one_line(result, outage)
    assert result.stderr.count("\n") == 1  # nothing else at all: no log line either


@pytest.mark.slow
@ON_SQLITE
@pytest.mark.parametrize(
    ("command", "outage"),
    [
        (("python", "redis down"), "redis down"),
        (("python", "postgres down"), "postgres down"),
        (("python", "no database"), "no database"),
        (("arq", "postgres down"), "postgres down"),
        (("arq", "no database"), "no database"),
    ],
)
def test_workers_say_in_one_line_what_is_unreachable(
    settings: Settings, tmp_path: Path, command: tuple[str, str], outage: str
) -> None:
    """`python -m jobs worker` and `arq …WorkerSettings` end with one line, no traceback.

    `arq` waits ``DATABASE_STARTUP_WAIT_SECONDS`` for an unreachable database first, saying so
    in one log line; ``python -m jobs worker`` migrates first and ends at once.
    """
    argv = (
        [*JOBS, "worker", "email"] if command[0] == "python" else [ARQ, "jobs.email.WorkerSettings"]
    )
    result = subprocess.run(
        argv,
        env=broken(settings, outage) | {"DATABASE_STARTUP_WAIT_SECONDS": "2"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert_one_line(result, outage)
    waited = "database not reachable yet" in result.stderr
    assert waited == (command == ("arq", "postgres down")), result.stderr


def parse_lines(text: str) -> list[dict[str, object]]:
    """Every line of ``text`` as a JSON object (fails on the first line that is not one)."""
    records = []
    for line in text.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record)
        records.append(record)
    return records


@pytest.mark.slow
@ON_SQLITE
@pytest.mark.usefixtures("engine")
async def test_worker_and_migrate_write_only_json_log_lines(
    pool: JobsPool, settings: Settings, tmp_path: Path
) -> None:
    """Under `arq` and `python -m jobs migrate`, ARQ's and Alembic's lines are JSON too."""
    env = worker_environment(settings) | {
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
    }
    migrate = await asyncio.to_thread(run, [*JOBS, "migrate"], env, tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.startswith("database at revision ")
    alembic = [r for r in parse_lines(migrate.stderr) if str(r["logger"]).startswith("alembic")]
    assert any(str(r["message"]).startswith("Running upgrade") for r in alembic)

    worker = start_worker(env, tmp_path)
    try:
        job = await pool.enqueue_job("send_email", to="j@example.com", subject="s", text="t")
        assert job is not None
        await job.result(timeout=30)
    finally:
        output = await asyncio.to_thread(stop_worker, worker)
    records = parse_lines(output)  # stdout and stderr together
    loggers = {str(r["logger"]) for r in records}
    assert {"arq.worker", "jobs.worker", "jobs.job"} <= loggers
    assert any(str(r["message"]).startswith("Starting worker for") for r in records)
    assert any("shutdown on SIGTERM" in str(r["message"]) for r in records)


def imported_by(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules ``python -m jobs ARGV`` imports, from ``-X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jobs", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "jobs.cli" in imported, result.stderr  # the check saw the imports it was meant to see
    return imported


def loaded(imported: set[str], heavy: tuple[str, ...]) -> set[str]:
    """Which of ``heavy`` (or their submodules) are among ``imported``."""
    return {m for m in imported if any(m == h or m.startswith(h + ".") for h in heavy)}


def test_help_loads_none_of_the_heavy_libraries() -> None:
    """`python -m jobs --help` imports neither ARQ, Redis, SQLAlchemy, Alembic nor the SDK."""
    assert loaded(imported_by("--help"), HEAVY_MODULES) == set()


def test_a_container_health_check_loads_neither_arq_nor_the_sdk() -> None:
    """`health --self FAMILY`, run every few seconds, needs Redis but not ARQ or OpenTelemetry."""
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    imported = imported_by("health", "--self", "email", env=env)
    assert "redis" in imported
    assert loaded(imported, ("arq", "opentelemetry.sdk", "alembic")) == set()


async def test_postgres_skip_message_says_what_is_wrong(postgres_database: str | None) -> None:
    """Not running, a refused user and a missing admin database each get their own message."""
    if postgres_database is not None:
        service_missing(postgres_database)
    errors = []
    for dsn in (
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        f"postgresql://jobs_no_such_role@{POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_ADMIN_DB}",
        f"postgresql://{POSTGRES_SERVER}/jobs_no_such_database",
    ):
        try:
            await (await asyncpg.connect(dsn, timeout=5)).close()
        except (OSError, asyncpg.PostgresError) as error:
            errors.append(error)
    if len(errors) < 3:
        pytest.skip("the test PostgreSQL accepts any role or database")
    not_running, refused, missing = (postgres_unavailable(error) for error in errors)
    assert "is not running" in not_running and "JOBS_TEST_PG_PORT" in not_running
    assert "refused user" in refused and "JOBS_TEST_PG_PASSWORD" in refused
    assert "has no database" in missing and "JOBS_TEST_PG_ADMIN_DB" in missing
