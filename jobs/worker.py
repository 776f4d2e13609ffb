"""The ``WorkerSettings`` base every family subclasses, and the worker's start-up and shut-down.

ARQ reads only a settings class's *own* ``__dict__`` (``arq.worker.get_kwargs``), so attributes
inherited from a base class would be silently ignored. :class:`FamilyWorkerSettings` therefore
writes the complete option set into each subclass when it is created::

    class WorkerSettings(FamilyWorkerSettings, family="email"):
        functions = [send_email, process_email_queue]
        cron_jobs = [Cron(process_email_queue, "*/5 * * * *")]

A family whose jobs need more than the shared settings (a key, a URL) names a
``settings_check = staticmethod(check)`` that runs first at start-up. Job functions become
runtime-wrapped ARQ functions; ``Cron`` entries become schedules in
``SCHEDULE_TIMEZONE``; the queue, Redis settings, serializer, hooks and the family's tuning are
filled in from the settings. Attributes the subclass sets itself (e.g. ``max_jobs``) win.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from arq.connections import RedisSettings
from arq.worker import func, get_kwargs

from jobs.client import JobsPool
from jobs.clients import SharedClients
from jobs.constants import queue_name
from jobs.database_watch import run_database_watch, wait_for_database
from jobs.db.migrate import require_current_schema
from jobs.dead_letters import DeadLetters
from jobs.envelope import worker_deserializer
from jobs.errors import ConfigurationError
from jobs.execution import TIMEOUT_MARGIN, wrap
from jobs.families import is_family
from jobs.intake import QueueGuard
from jobs.logs import configure_logging
from jobs.monitor import run_heartbeat
from jobs.outage_wait import ARQ_MAX_TRIES
from jobs.preflight import install_startup_hints
from jobs.quarantine import refused_payload_function
from jobs.redaction import Redactor
from jobs.redis_connection import adopt_retry_policy, redis_settings
from jobs.registry import JobFunction, JobSpec, spec_of
from jobs.schedule import Schedule, cron_job
from jobs.serializer import serialize_in_worker
from jobs.settings import FamilyTuning, Settings, get_settings
from jobs.telemetry import (
    configure_telemetry,
    instrument_redis_client,
    shutdown_telemetry,
)
from jobs.worker_loop import JobsWorker, adopt_running_worker

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine

__all__ = ["Cron", "FamilyWorkerSettings", "create_worker", "worker_options"]

logger = logging.getLogger("jobs.worker")

Hook = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]

#: How long a cron run's result (and so its once-only job id) is kept.
CRON_RESULT_TTL = 24 * 3600.0


@dataclass(frozen=True)
class Cron:
    """Run ``job`` (which must need no arguments) at the times of a 5-field cron expression.

    ``second`` (cron field syntax, default ``"0"``) allows sub-minute schedules.
    """

    job: JobFunction | JobSpec
    expression: str
    second: str = "0"


def _tuning(settings: Settings, family: str) -> FamilyTuning:
    tuning = getattr(settings, f"{family}_worker", None)
    return tuning if isinstance(tuning, FamilyTuning) else FamilyTuning()


SettingsCheck = Callable[[Settings], object]


def _startup(family: str, settings_check: SettingsCheck | None, connection: RedisSettings) -> Hook:
    async def startup(ctx: dict[str, Any]) -> None:
        worker = adopt_running_worker()  # `arq jobs.<family>.WorkerSettings` built ARQ's own
        settings: Settings = ctx.get("settings") or get_settings()
        ctx["settings"] = settings
        if worker is not None:
            worker.configure(settings.worker_lease_seconds)
        if settings_check is not None:
            settings_check(settings)  # raises ConfigurationError naming the setting
        configure_logging(settings)
        configure_telemetry(settings, family, owned_by_worker=True)
        clients = await SharedClients.open(settings)  # the backend's, or made here
        try:
            await wait_for_database(
                lambda: require_current_schema(clients.engine),
                within=settings.database_startup_wait_seconds,
            )
        except Exception:
            await clients.aclose()
            raise
        await adopt_retry_policy(ctx["redis"], connection)
        jobs_pool = JobsPool.sharing(ctx["redis"], settings)
        instrument_redis_client(jobs_pool)
        sessions = clients.sessions
        redactor = Redactor(settings)
        dead_letters = DeadLetters(ctx["redis"], settings.dead_letter_max_entries)
        guard = QueueGuard(
            ctx["redis"], queue_name(family), sessions, redactor, settings.job_max_payload_bytes
        )
        guard.dead_letters = dead_letters
        guard.install()
        ctx.update(
            clients=clients,
            engine=clients.engine,
            session_factory=sessions,
            http=clients.http,
            jobs_pool=jobs_pool,
            redactor=redactor,
            queue_guard=guard,
            family=family,
            heartbeat=asyncio.create_task(
                run_heartbeat(ctx["redis"], family, settings, link=ctx.get("redis_link"))
            ),
            dead_letters=dead_letters,
            database_watch=asyncio.create_task(
                run_database_watch(
                    clients.engine,
                    sessions,
                    dead_letters,
                    interval=settings.dead_letter_drain_interval,
                )
            ),
        )
        logger.info("%s worker ready on queue %s", family, queue_name(family))

    return startup


async def _shutdown(ctx: dict[str, Any]) -> None:
    for name in ("heartbeat", "database_watch"):
        if name in ctx:
            ctx[name].cancel()
            await asyncio.gather(ctx[name], return_exceptions=True)
    if "clients" in ctx:
        await ctx["clients"].aclose()
    shutdown_telemetry()


def worker_options(
    family: str,
    settings: Settings,
    functions: Sequence[JobFunction | JobSpec],
    crons: Sequence[Cron],
    settings_check: SettingsCheck | None = None,
) -> dict[str, Any]:
    """The complete ARQ ``Worker`` keyword arguments for one family.

    ``settings_check`` runs first at start-up and stops the worker with a ConfigurationError
    when the family cannot work with the settings (e.g. a missing key).
    """
    if not is_family(family):
        raise ValueError(
            f"unknown family {family!r}: declare it first with jobs.declare_family({family!r})"
        )
    tuning = _tuning(settings, family)
    arq_functions = []
    for function in functions:
        spec = spec_of(function)
        if spec.family != family:
            raise ValueError(f"job {spec.name!r} belongs to family {spec.family!r}, not {family!r}")
        timeout = spec.timeout or tuning.job_timeout
        arq_functions.append(
            func(
                cast("WorkerCoroutine", wrap(spec, timeout=timeout)),
                name=spec.name,
                timeout=timeout + TIMEOUT_MARGIN,
                max_tries=ARQ_MAX_TRIES,
            )
        )
    arq_crons = []
    for entry in crons:
        spec = spec_of(entry.job)
        if spec.family != family:
            raise ValueError(f"cron job {spec.name!r} belongs to family {spec.family!r}")
        timeout = spec.timeout or tuning.job_timeout
        arq_crons.append(
            cron_job(
                wrap(spec, timeout=timeout),
                name=spec.name,
                schedule=Schedule.parse(entry.expression, settings.timezone, second=entry.second),
                timeout=timeout + TIMEOUT_MARGIN,
                keep_result=CRON_RESULT_TTL,
                max_tries=ARQ_MAX_TRIES,
            )
        )
    arq_functions.append(refused_payload_function(queue_name(family)))
    connection = redis_settings(settings.redis_url)
    names = [function.name for function in arq_functions] + [cron.name for cron in arq_crons]
    return {
        "queue_name": queue_name(family),
        "functions": arq_functions,
        "cron_jobs": arq_crons,
        "redis_settings": connection,
        "on_startup": _startup(family, settings_check, connection),
        "on_shutdown": _shutdown,
        "job_serializer": serialize_in_worker,
        "job_deserializer": worker_deserializer(
            queue_name(family), names, settings.job_max_payload_bytes
        ),
        "max_jobs": tuning.max_jobs,
        "job_timeout": tuning.job_timeout + TIMEOUT_MARGIN,
        "job_completion_wait": round(tuning.shutdown_grace),
        "poll_delay": settings.worker_poll_delay,
        "health_check_interval": settings.worker_health_check_interval,
        "keep_result": 3600,
        "allow_abort_jobs": True,
        "log_results": False,
        "timezone": dt.UTC,
    }


class FamilyWorkerSettings:
    """Base of each family's ``WorkerSettings``; see the module docstring."""

    family: ClassVar[str]
    _declared_functions: ClassVar[tuple[JobFunction | JobSpec, ...]]
    _declared_crons: ClassVar[tuple[Cron, ...]]

    def __init_subclass__(cls, *, family: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        try:
            settings = get_settings()
        except ConfigurationError as error:
            raise SystemExit(f"jobs: {error}") from None
        install_startup_hints(settings)
        functions = cls.__dict__.get("functions", ())
        crons = cls.__dict__.get("cron_jobs", ())
        check = cls.__dict__.get("settings_check")
        if isinstance(check, staticmethod):
            check = check.__func__
        options = worker_options(family, settings, functions, crons, check)
        cls.family = family
        cls._declared_functions = tuple(functions)
        cls._declared_crons = tuple(crons)
        for key, value in options.items():
            if key in ("functions", "cron_jobs") or key not in cls.__dict__:
                setattr(cls, key, value)


def create_worker(settings_cls: type[FamilyWorkerSettings], **overrides: Any) -> JobsWorker:
    """The family's worker, as ``arq`` would build it from ``settings_cls``, woken by producers."""
    return JobsWorker(**{**get_kwargs(cast(Any, settings_cls)), **overrides})
