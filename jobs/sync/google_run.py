"""One run of one Google account's sync: its tokens, its calendar list, each calendar.

A calendar Google refuses (403 other than a rate limit, 404) is counted on that calendar and
the others go on; the run then ends ``partial`` — reported as the job's failure
(``CalendarSyncError``) with the account's ``last_error`` naming the failing calendars — so a
calendar that keeps failing never looks synced. Anything that stops the whole account goes
through :func:`jobs.sync.outcome.run_failed`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from jobs.context import JobContext
from jobs.db.base import utcnow
from jobs.db.sync_models import AccountState, GoogleAccount
from jobs.errors import TransientJobError
from jobs.sync.accounts import is_due, record_calendar_error, record_outcome
from jobs.sync.calendar import sync_calendar
from jobs.sync.calendar_list import discover_calendars
from jobs.sync.errors import AccountSyncError, CalendarSyncError
from jobs.sync.generation import SyncSuperseded
from jobs.sync.google import GoogleAuth, GoogleCalendarClient
from jobs.sync.observability import count_account_run, count_restarts
from jobs.sync.outcome import run_failed, sender, skipped, superseded
from jobs.sync.tokens import TokenCipher, cipher_from_settings

__all__ = ["sync_google_account"]

logger = logging.getLogger("jobs.sync")


def _client(ctx: JobContext, cipher: TokenCipher, account: GoogleAccount) -> GoogleCalendarClient:
    """A calendar client with the account's tokens, storing refreshed ones encrypted."""
    settings = ctx.settings
    requests = sender(
        ctx,
        f"google:user:{account.user_id}",
        settings.google_rate_per_second,
        settings.google_rate_burst,
    )

    async def store_tokens(access: str, expires_at: dt.datetime, refresh: str) -> None:
        await record_outcome(
            ctx.sessions,
            GoogleAccount,
            account.id,
            error=account.last_error,
            access_token_encrypted=cipher.encrypt(access),
            token_expires_at=expires_at,
            refresh_token_encrypted=cipher.encrypt(refresh),
        )

    def stored(ciphertext: str | None) -> str | None:
        return cipher.decrypt(ciphertext) if ciphertext else None

    auth = GoogleAuth(
        sender=requests,
        settings=settings,
        access_token=stored(account.access_token_encrypted),
        expires_at=account.token_expires_at,
        refresh_token=stored(account.refresh_token_encrypted),
        on_refresh=store_tokens,
    )
    return GoogleCalendarClient(requests, auth, settings.google_api_base_url)


async def sync_google_account(ctx: JobContext, account_id: int) -> dict[str, Any]:
    """Sync every calendar of one Google account; its state records how the run ended."""
    cipher = cipher_from_settings(ctx.settings)
    async with ctx.sessions() as session:
        account = await session.get(GoogleAccount, account_id)
    if account is None or not is_due(account, utcnow()):
        return skipped(account)
    client = _client(ctx, cipher, account)
    totals = dict.fromkeys(
        (
            "calendars",
            "pages",
            "upserted",
            "deleted",
            "full_syncs",
            "calendars_refused",
            "calendars_removed",
        ),
        0,
    )
    failing: dict[str, str] = {}
    try:
        calendars, listing = await discover_calendars(
            client, ctx.sessions, account, page_size=ctx.settings.google_page_size
        )
        totals["calendars_removed"] = listing.removed
        if listing.refused is not None:
            logger.warning(
                "google account %d: calendar list refused, syncing the stored calendars: %s",
                account_id,
                ctx.redact(listing.refused),
            )
        for calendar in calendars:
            try:
                outcome = await sync_calendar(
                    client, ctx.sessions, calendar, page_size=ctx.settings.google_page_size
                )
            except CalendarSyncError as refused:
                reason = ctx.redact(str(refused))
                failures = await record_calendar_error(ctx.sessions, calendar.id, reason)
                logger.warning(
                    "google account %d: %s (%d run(s) in a row)",
                    account_id,
                    reason,
                    failures,
                )
                failing[calendar.calendar_id] = reason
                continue
            totals["calendars"] += 1
            totals["pages"] += outcome.pages
            totals["upserted"] += outcome.upserted
            totals["deleted"] += outcome.deleted
            totals["full_syncs"] += int(outcome.full)
            count_restarts("google", "sync_token_expired", int(outcome.resynced_after_410))
    except (AccountSyncError, TransientJobError) as error:
        return await run_failed(ctx, account, error)
    except SyncSuperseded as error:
        return superseded(account, error)
    totals["calendars_refused"] = len(failing)
    problem = None
    if failing:
        problem = f"{len(failing)} of {len(failing) + totals['calendars']} calendars failing: " + (
            "; ".join(failing.values())
        )
    await record_outcome(ctx.sessions, GoogleAccount, account_id, error=problem, synced_at=utcnow())
    count_account_run("google", AccountState.ACTIVE.value)
    if problem is not None:
        ctx.report_failure("CalendarSyncError", problem)
        return {"status": "partial", **totals, "failing": failing}
    return {"status": "synced", **totals}
