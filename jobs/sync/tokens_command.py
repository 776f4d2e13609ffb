"""``python -m jobs tokens check|rotate``: which key the stored tokens are under; re-encrypting.

``check`` counts, per token column, the tokens under ``TOKEN_ENCRYPTION_KEY``, under one of
``TOKEN_ENCRYPTION_OLD_KEYS`` and under none of them, and exits 1 unless every token is under
the current key. ``rotate`` re-encrypts the tokens under an old key with the current one, in
short transactions of a batch each. A token is replaced only if it is still the one read
(compare and set), so a sync storing a refreshed token meanwhile is never overwritten; that
token is read again and rotated if it needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db import create_engine, create_session_factory
from jobs.db.sync_models import GoogleAccount, NotionIntegration
from jobs.health import Report
from jobs.settings import Settings
from jobs.sync.tokens import KeyOfToken, TokenCipher, cipher_from_settings

__all__ = ["TOKEN_COLUMNS", "check_tokens", "rotate_stored_token", "rotate_tokens"]

#: Every column holding an encrypted token.
TOKEN_COLUMNS: tuple[tuple[type[GoogleAccount] | type[NotionIntegration], str], ...] = (
    (GoogleAccount, "access_token_encrypted"),
    (GoogleAccount, "refresh_token_encrypted"),
    (NotionIntegration, "token_encrypted"),
)
BATCH_SIZE = 200
#: How often one token that keeps changing under the rotation is read again.
CHANGED_RETRIES = 3


@dataclass
class ColumnCount:
    """What one token column holds, by key, and what a rotation did to it."""

    current: int = 0
    old: int = 0
    rotated: int = 0
    unreadable_ids: list[int] = field(default_factory=list)


async def rotate_stored_token(
    session: AsyncSession,
    model: type[GoogleAccount] | type[NotionIntegration],
    column: str,
    row_id: int,
    value: str,
    cipher: TokenCipher,
) -> KeyOfToken | None:
    """Replace an old-key token by its current-key form; the key it ended under (None: gone)."""
    stored = getattr(model, column)
    for _ in range(CHANGED_RETRIES):
        which = cipher.key_of(value)
        if which is not KeyOfToken.OLD:
            return which
        result = await session.execute(
            update(model)
            .where(model.id == row_id, stored == value)
            .values({column: cipher.rotate(value)})
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return None
        fresh = await session.scalar(select(stored).where(model.id == row_id))
        if fresh is None:
            return KeyOfToken.CURRENT  # the account was disconnected meanwhile: nothing to keep
        value = fresh
    return KeyOfToken.OLD


async def _column(
    sessions: async_sessionmaker[AsyncSession],
    model: type[GoogleAccount] | type[NotionIntegration],
    column: str,
    cipher: TokenCipher,
    rotate: bool,
) -> ColumnCount:
    count = ColumnCount()
    stored = getattr(model, column)
    last_id = 0
    while True:
        async with sessions.begin() as session:
            rows = (
                await session.execute(
                    select(model.id, stored)
                    .where(model.id > last_id, stored.is_not(None))
                    .order_by(model.id)
                    .limit(BATCH_SIZE)
                )
            ).all()
            for row_id, value in rows:
                which: KeyOfToken | None = cipher.key_of(value)
                if which is KeyOfToken.OLD and rotate:
                    which = await rotate_stored_token(session, model, column, row_id, value, cipher)
                if which is None:
                    count.rotated += 1
                    continue
                if which is KeyOfToken.CURRENT:
                    count.current += 1
                elif which is KeyOfToken.OLD:
                    count.old += 1
                else:
                    count.unreadable_ids.append(row_id)
        if len(rows) < BATCH_SIZE:
            return count
        last_id = rows[-1][0]


def _line(model: type[GoogleAccount] | type[NotionIntegration], column: str, c: ColumnCount) -> str:
    line = (
        f"{model.__tablename__}.{column}: {c.current + c.rotated} on the current key"
        f" ({c.rotated} re-encrypted now), {c.old} on an old key, "
        f"{len(c.unreadable_ids)} unreadable"
    )
    if c.unreadable_ids:
        shown = ", ".join(str(i) for i in c.unreadable_ids[:20])
        line += f" (ids {shown}{', …' if len(c.unreadable_ids) > 20 else ''})"
    return line


async def _tokens(settings: Settings, rotate: bool) -> Report:
    cipher = cipher_from_settings(settings)
    engine = create_engine(settings)
    try:
        sessions = create_session_factory(engine)
        counts = [
            (model, column, await _column(sessions, model, column, cipher, rotate))
            for model, column in TOKEN_COLUMNS
        ]
    finally:
        await engine.dispose()
    lines = [_line(model, column, count) for model, column, count in counts]
    old = sum(count.old for _, _, count in counts)
    unreadable = sum(len(count.unreadable_ids) for _, _, count in counts)
    if unreadable:
        lines.append(
            f"{unreadable} token(s) decrypt with no configured key: add the key they were made "
            "with to TOKEN_ENCRYPTION_OLD_KEYS, or have those users connect their accounts again"
        )
    elif old:
        lines.append(
            f"{old} token(s) still under an old key: run python -m jobs tokens rotate"
            if not rotate
            else f"{old} token(s) kept changing during the rotation: run it again"
        )
    else:
        lines.append("every stored token is under TOKEN_ENCRYPTION_KEY")
    return Report("\n".join(lines), 1 if old or unreadable else 0)


async def check_tokens(settings: Settings) -> Report:
    """Stored tokens by key (current, old, none); exit code 1 unless all are current."""
    return await _tokens(settings, rotate=False)


async def rotate_tokens(settings: Settings) -> Report:
    """Re-encrypt every token under an old key with the current key; exit 1 if any is left."""
    return await _tokens(settings, rotate=True)
