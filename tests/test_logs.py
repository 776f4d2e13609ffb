"""The per-job log lines: which are written by default, their JSON form, and masking in them."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from pydantic import SecretStr

from jobs import JobsPool
from jobs.logs import JsonFormatter, SecretFilter
from jobs.redaction import Redactor
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst

TOKEN = "tok-0123456789-abcdef-private"


def json_line(record: logging.LogRecord, settings: Settings) -> dict[str, object]:
    """``record`` as the worker's handler writes it: masked, then one JSON object."""
    SecretFilter(Redactor(settings)).filter(record)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


@pytest.mark.usefixtures("engine")
async def test_a_job_gets_the_runtimes_two_lines_and_none_of_arqs_by_default(
    pool: JobsPool, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """By default ARQ's "→"/"←" lines are left out; the runtime's end line has the outcome."""
    caplog.set_level(logging.INFO)
    from tests import sample_jobs

    job = await pool.enqueue_job("test_echo", number=1)
    assert job is not None
    await run_burst(await make_worker(settings, [sample_jobs.echo]))
    arq_lines = [r.getMessage() for r in caplog.records if r.name == "arq.worker"]
    assert not any(job.job_id in line for line in arq_lines), arq_lines
    mine = [r for r in caplog.records if r.name == "jobs.job"]
    assert [r.getMessage() for r in mine] == ["job test_echo started", "job test_echo succeeded"]
    end: dict[str, object] = mine[1].job  # type: ignore[attr-defined]
    assert end["job_id"] == job.job_id and end["outcome"] == "success" and end["try"] == 1
    assert isinstance(end["duration_s"], float)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("created", [1_780_000_000.0, 1_780_000_000.9996, 1_780_000_059.0504])
def test_a_json_line_has_the_time_to_the_millisecond_in_utc(
    settings: Settings, created: float
) -> None:
    """The ``time`` field is the record's time in ISO 8601, UTC, truncated to milliseconds."""
    record = logging.LogRecord("jobs.job", logging.INFO, __file__, 1, "job %s", ("x",), None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    line = json_line(record, settings)
    expected = dt.datetime.fromtimestamp(int(created), dt.UTC) + dt.timedelta(
        milliseconds=int(record.msecs)
    )
    assert line["time"] == expected.isoformat(timespec="milliseconds")
    assert line["message"] == "job x" and line["level"] == "info"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_secrets_are_masked_in_message_pairs_and_job_fields_alike(settings: Settings) -> None:
    """A configured secret, a ``token=…`` pair and a secret in a job field never reach the line."""
    settings = settings.model_copy(update={"llm_api_key": SecretStr(TOKEN)})
    cases = [
        ("called with key %s", (TOKEN,), {}),
        ("retry with api_token=%s", ("unconfigured-value",), {}),
        ("plain message", (), {"error": f"HTTP 401 for {TOKEN}", "try": 2, "nested": [TOKEN]}),
    ]
    for message, arguments, fields in cases:
        record = logging.LogRecord("jobs.job", logging.INFO, __file__, 1, message, arguments, None)
        record.job = fields
        text = json.dumps(json_line(record, settings))
        assert TOKEN not in text and "unconfigured-value" not in text, text
        assert "***" in text, text
