"""Restore trusts neither an archive's parent references nor its header alone, on both DBs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.db import Base, GoogleAccount, User
from jobs.files import BackupError, backup_user, restore_backup
from jobs.files.archive import ArchiveWriter
from tests.files_data import add_user_with_data
from tests.test_files_backup import archive_documents

Document = dict[str, Any]


@pytest.fixture
async def two_users(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """Ann and Bob, each with rows in every user-owned table."""
    return await add_user_with_data(sessions, "ann"), await add_user_with_data(sessions, "bob")


async def every_row(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order: the whole database."""
    async with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in (
                    await connection.execute(select(table).order_by(*table.primary_key.columns))
                ).mappings()
            ]
            for table in Base.metadata.sorted_tables
        }


def rewrite(source: Path, target: Path, change: Callable[[Document], Document]) -> Path:
    """Write ``source``'s documents, changed by ``change``, as a valid archive at ``target``."""
    documents = [change(d) for d in archive_documents(source) if d["kind"] != "manifest"]
    header = {k: v for k, v in documents[0].items() if k not in ("kind", "format", "version")}
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    writer = ArchiveWriter(target, header)
    for document in documents[1:]:
        writer.write_rows(str(document["table"]), [document["row"]])
    writer.finish()
    return target


async def google_account_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    """The id of the user's Google account."""
    async with sessions() as session:
        account = await session.scalar(
            select(GoogleAccount.id).where(GoogleAccount.user_id == user_id)
        )
    assert account is not None
    return account


@pytest.mark.parametrize("ann_deleted", [True, False], ids=["into-empty", "over-her-rows"])
@pytest.mark.parametrize("parent", ["bob's account", "no such account"])
async def test_a_row_pointing_at_a_parent_that_is_not_the_users_is_refused(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    two_users: tuple[int, int],
    tmp_path: Path,
    ann_deleted: bool,
    parent: str,
) -> None:
    """Ann's event re-pointed at Bob's (or no) Google account: refused, the database unchanged."""
    ann, bob = two_users
    genuine = Path((await backup_user(engine, ann, tmp_path / "backups", keep=8))["path"])
    foreign = await google_account_of(sessions, bob) if parent == "bob's account" else 10**9

    def repoint(document: Document) -> Document:
        if document.get("table") == "calendar_events":
            document["row"]["account_id"] = foreign
        return document

    crafted = rewrite(genuine, genuine.with_name("backup-crafted.jsonl.gz"), repoint)
    if ann_deleted:
        async with sessions.begin() as session:
            await session.execute(delete(User).where(User.id == ann))
    before = await every_row(engine)
    with pytest.raises(BackupError) as refused:
        await restore_backup(engine, crafted)
    assert str(refused.value) == (
        f"{crafted} cannot be restored here, nothing was changed: calendar_events rows refer to "
        f"google_accounts row(s) {foreign} that are not user {ann}'s"
    )
    assert await every_row(engine) == before


async def test_an_archive_in_another_users_directory_is_refused(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    two_users: tuple[int, int],
    tmp_path: Path,
) -> None:
    """Bob's genuine archive copied into Ann's backup directory is refused; nothing changes."""
    ann, bob = two_users
    bobs = Path((await backup_user(engine, bob, tmp_path / "backups", keep=8))["path"])
    in_anns = tmp_path / "backups" / str(ann) / bobs.name
    in_anns.parent.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(bobs, in_anns)
    async with sessions.begin() as session:
        await session.execute(delete(User).where(User.id == bob))
    before = await every_row(engine)
    with pytest.raises(BackupError) as refused:
        await restore_backup(engine, in_anns)
    assert str(refused.value) == (
        f"{in_anns} lies in the backup directory of user {ann} but is a backup of user {bob}: "
        "refused, nothing was changed"
    )
    assert await every_row(engine) == before


async def test_an_archive_outside_a_users_directory_is_refused(
    engine: AsyncEngine, two_users: tuple[int, int], tmp_path: Path
) -> None:
    """An archive that is not in BACKUP_DIR/<user id>/ is refused, saying where it belongs."""
    ann, _ = two_users
    genuine = Path((await backup_user(engine, ann, tmp_path / "backups", keep=8))["path"])
    loose = tmp_path / "downloads" / genuine.name
    loose.parent.mkdir()
    shutil.copy(genuine, loose)
    before = await every_row(engine)
    with pytest.raises(
        BackupError, match=r"is not in a user's backup directory \(BACKUP_DIR/<user id>/\)"
    ):
        await restore_backup(engine, loose)
    assert await every_row(engine) == before


async def test_a_manifest_naming_another_user_than_the_header_is_refused(
    engine: AsyncEngine, two_users: tuple[int, int], tmp_path: Path
) -> None:
    """An archive whose header was changed to another user (manifest left) is corrupted."""
    ann, bob = two_users
    genuine = Path((await backup_user(engine, ann, tmp_path / "backups", keep=8))["path"])
    documents = archive_documents(genuine)
    header, manifest = documents[0], documents[-1]
    assert header["user_id"] == manifest["user_id"] == ann
    with pytest.raises(BackupError, match=r"the manifest names user \d+, the header user \d+"):
        await restore_backup(engine, _with_header_user(genuine, tmp_path, bob))


def _with_header_user(source: Path, tmp_path: Path, user_id: int) -> Path:
    """``source`` with only its header's user id changed, checksum recomputed, manifest kept."""
    documents = archive_documents(source)
    documents[0]["user_id"] = user_id
    lines = [
        json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        for d in documents[:-1]
    ]
    manifest = {**documents[-1], "sha256": hashlib.sha256(b"".join(lines)).hexdigest()}
    compressed = io.BytesIO()  # no file name in the gzip header, as the backup job writes it
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as stream:
        stream.write(b"".join(lines) + json.dumps(manifest).encode() + b"\n")
    target = tmp_path / "backups" / str(user_id) / "backup-relabelled.jsonl.gz"
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.write_bytes(compressed.getvalue())
    return target
