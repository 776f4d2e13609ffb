"""`python -m jobs` commands, parsed and run in-process against the test services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs import JobsPool
from jobs.cli import main
from jobs.settings import Settings, get_settings
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process environment a CLI user would set, pointing at the test services."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("DATABASE_URL", settings.resolved_database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("environment")
def test_enqueue_parses_json_values_and_reports_bad_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`enqueue test_echo number=5` queues it; `number=abc` exits 2 naming the argument."""
    assert main(["enqueue", "test_echo", "number=5", "label=five"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert len(job_id) == 32
    assert main(["enqueue", "test_echo", "number=abc"]) == 2
    assert "invalid arguments for job 'test_echo': number" in capsys.readouterr().err
    assert main(["enqueue", "no_such_job"]) == 2
    assert "unknown job 'no_such_job'" in capsys.readouterr().err


@pytest.mark.usefixtures("environment")
async def test_failed_commands_through_the_parser(
    pool: JobsPool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`failed list`, `failed show ID`, `failed purge --older-than 1` and `failed purge` work."""
    import asyncio

    await pool.enqueue_job("test_slow")
    await run_burst(await make_worker(settings, [sample_jobs.slow]))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, listing, _ = await asyncio.to_thread(run, "failed", "list", "--job", "test_slow")
    assert code == 0 and "JobTimeout" in listing
    record_id = listing.split()[0]
    code, shown, _ = await asyncio.to_thread(run, "failed", "show", record_id)
    assert code == 0 and '"error_type": "JobTimeout"' in shown
    assert (await asyncio.to_thread(run, "failed", "purge", "--older-than", "1"))[1].strip() == (
        "deleted 0 failed-job record(s)"
    )
    assert (await asyncio.to_thread(run, "failed", "purge"))[1].strip() == (
        "deleted 1 failed-job record(s)"
    )
    code, _, error = await asyncio.to_thread(run, "failed", "show", record_id)
    assert code == 2 and f"no failed job with id {record_id}" in error
