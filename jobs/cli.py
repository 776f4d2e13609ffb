"""``python -m jobs``: what operators do by hand.

Commands: ``migrate`` (apply migrations), ``downgrade REVISION`` (roll them back), ``worker
FAMILY`` (migrate, check Redis, run the family's worker), ``enqueue NAME key=value …``,
``jobs`` (list the declared jobs), ``health`` and ``status`` (workers and queues),
``failed list|show|requeue|purge``, ``emails failed``, ``restore ARCHIVE`` (restore a
user's backup), ``accounts list|reactivate`` (connected accounts by state) and ``tokens
check|rotate`` (stored tokens by key; re-encrypt them after a key change).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import logging.config
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobs.constants import FAMILIES
from jobs.errors import ConfigurationError, JobsError

if TYPE_CHECKING:
    from jobs.health import Report
    from jobs.settings import Settings

__all__ = ["main"]


async def _migrate(settings: Settings, revision: str, down: bool = False) -> str | None:
    from jobs.db import create_engine, downgrade, upgrade
    from jobs.db.migrate import current_revision

    engine = create_engine(settings)
    try:
        await (downgrade(engine, revision) if down else upgrade(engine, revision))
        return await current_revision(engine)
    finally:
        await engine.dispose()


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


async def _enqueue(settings: Settings, name: str, pairs: Sequence[str]) -> str:
    from jobs.client import create_pool

    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise JobsError(f"argument {pair!r} is not key=value")
        kwargs[key] = _parse_value(value)
    pool = await create_pool(settings)
    try:
        job = await pool.enqueue_job(name, **kwargs)
    finally:
        await pool.aclose()
    return "a job with that id exists already" if job is None else job.job_id


async def _operator_command(settings: Settings, args: argparse.Namespace) -> Report:
    if args.command == "health":
        from jobs.health import health_report, local_health_report

        if args.local or args.pid is not None:
            return await local_health_report(settings, args.families, args.pid)
        return await health_report(settings, args.families)
    from jobs import operations

    if args.command == "status":
        return await operations.status_report(settings)
    if args.command == "emails":
        return await operations.failed_emails_report(settings, limit=args.limit)
    return await operations.failed_command(
        settings,
        args.action,
        record_id=getattr(args, "record_id", None),
        limit=getattr(args, "limit", 50),
        job_name=getattr(args, "job_name", None),
        older_than_days=getattr(args, "older_than_days", None),
    )


def _run_worker(family: str, burst: bool) -> int:
    from jobs.worker import create_worker

    module = importlib.import_module(f"jobs.{family}")
    worker = create_worker(module.WorkerSettings, burst=burst)
    worker.run()
    return 1 if worker.jobs_failed and burst else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    down = commands.add_parser("downgrade", help="roll database migrations back")
    down.add_argument("revision", help="target revision, or 'base' for an empty schema")
    worker = commands.add_parser("worker", help="migrate, check Redis, run a family's worker")
    worker.add_argument("family", choices=FAMILIES)
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    enqueue = commands.add_parser("enqueue", help="enqueue a job: NAME key=value …")
    enqueue.add_argument("name")
    enqueue.add_argument("arguments", nargs="*", help="key=value; values are JSON or text")
    commands.add_parser("jobs", help="list the declared jobs")
    health = commands.add_parser("health", help="exit non-zero if a family has no live worker")
    health.add_argument(
        "families",
        nargs="*",
        metavar="FAMILY",
        help="default: every family, with those of JOB_FAMILY_MODULES",
    )
    health.add_argument(
        "--self",
        dest="local",
        action="store_true",
        help="only this host's worker of each FAMILY counts (a container's health check)",
    )
    health.add_argument("--pid", type=int, help="only the worker with this process id counts")
    commands.add_parser("status", help="queues, running and failed jobs, workers: one screen")
    failed = commands.add_parser("failed", help="list, show, requeue or purge failed jobs")
    actions = failed.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--job", dest="job_name")
    for name in ("show", "requeue"):
        actions.add_parser(name).add_argument("record_id", type=int)
    purge = actions.add_parser("purge", help="delete records (all, or --older-than DAYS)")
    purge.add_argument("--older-than", dest="older_than_days", type=float)
    emails = commands.add_parser("emails", help="e-mails that failed for good")
    emails.add_subparsers(dest="action", required=True).add_parser(
        "failed", help="newest first, with the server's reply"
    ).add_argument("--limit", type=int, default=50)
    restore = commands.add_parser("restore", help="verify a user's backup and restore its rows")
    restore.add_argument("archive", help="a backup file from BACKUP_DIR/<user id>/")
    accounts = commands.add_parser("accounts", help="connected accounts by state; reactivate one")
    account_actions = accounts.add_subparsers(dest="action", required=True)
    account_actions.add_parser("list", help="Google accounts and Notion integrations").add_argument(
        "--state", choices=("active", "error", "needs_reconsent")
    )
    reactivate = account_actions.add_parser("reactivate", help="set an account active again")
    reactivate.add_argument("kind", choices=("google", "notion"))
    reactivate.add_argument("account_id", type=int)
    tokens = commands.add_parser("tokens", help="stored tokens by key; re-encrypt them")
    token_actions = tokens.add_subparsers(dest="action", required=True)
    token_actions.add_parser("check", help="exit 1 unless every token is under the current key")
    token_actions.add_parser("rotate", help="re-encrypt tokens under an old key with the current")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "health" and (args.local or args.pid is not None) and not args.families:
        parser.error("health --self/--pid: name the FAMILY of the worker to check")
    try:
        from jobs.settings import get_settings

        settings = get_settings()
    except ConfigurationError as error:
        print(f"jobs: {error}", file=sys.stderr)
        return 2
    from jobs.logs import command_logging, install_secret_masking
    from jobs.preflight import connection_problem

    if not logging.getLogger().handlers:  # as logging.basicConfig: a host's own set-up wins
        logging.config.dictConfig(command_logging(settings))
        install_secret_masking(settings)
    if args.command not in ("migrate", "downgrade", "worker"):
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return _run(args, settings)
    except (ConfigurationError, JobsError) as error:
        from jobs.redis_link import RedisUnavailableError  # imported on failure only

        if isinstance(error, RedisUnavailableError):  # after the client's retries
            print(connection_problem(settings, error), file=sys.stderr)
            return 1
        print(f"jobs: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        message = connection_problem(settings, error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command."""
    if args.command in ("migrate", "downgrade"):
        revision = asyncio.run(_migrate(settings, args.revision, args.command == "downgrade"))
        print(f"database at revision {revision or 'base (empty)'}")
    elif args.command == "worker":
        from jobs.preflight import redis_problem

        problem = asyncio.run(redis_problem(settings))
        if problem:
            print(problem, file=sys.stderr)
            return 1
        asyncio.run(_migrate(settings, "head"))
        return _run_worker(args.family, args.burst)
    elif args.command == "enqueue":
        from jobs.cli_telemetry import command_telemetry

        with command_telemetry(settings):
            print(asyncio.run(_enqueue(settings, args.name, args.arguments)))
    elif args.command == "failed" and args.action == "requeue":
        from jobs.cli_telemetry import command_telemetry

        with command_telemetry(settings):
            report = asyncio.run(_operator_command(settings, args))
        print(report.text)
        return report.exit_code
    elif args.command in ("health", "status", "failed", "emails"):
        report = asyncio.run(_operator_command(settings, args))
        print(report.text)
        return report.exit_code
    elif args.command == "jobs":
        from jobs.registry import all_jobs

        for spec in all_jobs():
            arguments = ", ".join(spec.arguments.model_fields) or "-"
            print(f"{spec.name:28} {spec.queue:20} max_tries={spec.retry.max_tries} ({arguments})")
    elif args.command == "restore":
        from jobs.files.restore_command import restore_archive

        print(asyncio.run(restore_archive(settings, args.archive)))
    elif args.command == "accounts":
        from jobs.sync.accounts_command import list_accounts, reactivate_account

        if args.action == "list":
            print(asyncio.run(list_accounts(settings, args.state)))
        else:
            print(asyncio.run(reactivate_account(settings, args.kind, args.account_id)))
    elif args.command == "tokens":
        from jobs.sync.tokens_command import check_tokens, rotate_tokens

        command = rotate_tokens if args.action == "rotate" else check_tokens
        report = asyncio.run(command(settings))
        print(report.text)
        return report.exit_code
    return 0
