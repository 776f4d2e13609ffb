"""Per-user backups and restores on SQLite and PostgreSQL, through real archive files."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import stat
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import Base, OutboundEmail, User
from jobs.files import (
    BackupError,
    backup_one_user,
    backup_user,
    backup_user_data,
    list_backups,
    owned_tables,
    restore_backup,
)
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.files_data import add_user_with_data, rows_of


@pytest.fixture
async def two_users(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """Ann and Bob, each with rows in every user-owned table, and an e-mail of nobody."""
    ann = await add_user_with_data(sessions, "ann")
    bob = await add_user_with_data(sessions, "bob")
    async with sessions.begin() as session:
        session.add(OutboundEmail(to_address="ops@example.com", subject="s", body_text="t"))
    return ann, bob


def damage_file(path: Path, damage: str) -> None:
    """Cut the file to two thirds, or flip one bit in its middle or in its gzip header."""
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        del data[len(data) * 2 // 3 :]
    else:
        position = 5 if damage == "flipped gzip header byte" else len(data) // 2
        data[position] ^= 0x01
    path.write_bytes(bytes(data))


async def run_command(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -m jobs ARGS``; exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobs", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def archive_documents(path: Path) -> list[dict[str, object]]:
    """The JSON documents of an archive, unchecked."""
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


async def test_backup_wipe_restore_gives_identical_rows(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    two_users: tuple[int, int],
    tmp_path: Path,
) -> None:
    """Ann's rows after backup, deleting her and restoring (twice) equal her rows before."""
    ann, bob = two_users
    before, bobs = await rows_of(engine, ann), await rows_of(engine, bob)
    result = await backup_user(engine, ann, tmp_path / "backups", keep=8)
    assert result["rows"] == sum(len(rows) for rows in before.values()) == 13
    async with sessions.begin() as session:
        await session.execute(delete(User).where(User.id == ann))
    assert sum(len(rows) for rows in (await rows_of(engine, ann)).values()) == 0
    for _ in range(2):
        report = await restore_backup(engine, Path(result["path"]))
        assert report.rows == 13
        assert await rows_of(engine, ann) == before
    assert await rows_of(engine, bob) == bobs
    async with sessions.begin() as session:  # the id sequence moved past the restored ids
        session.add(User(email="new@example.com"))
        await session.flush()


async def test_backup_holds_no_row_of_another_user(
    engine: AsyncEngine, two_users: tuple[int, int], tmp_path: Path
) -> None:
    """Every row in Bob's archive is his: users row, user_id columns, and every table covered."""
    _, bob = two_users
    result = await backup_user(engine, bob, tmp_path / "backups", keep=8)
    documents = archive_documents(Path(result["path"]))
    header, manifest = documents[0], documents[-1]
    assert header["user_id"] == manifest["user_id"] == bob
    rows = [d for d in documents if d["kind"] == "row"]
    assert len(rows) == manifest["rows"] == 13
    for document in rows:
        row = document["row"]
        assert isinstance(row, dict)
        assert (row["id"] if document["table"] == "users" else row["user_id"]) == bob
    assert {d["table"] for d in rows} == {owned.name for owned in owned_tables(Base.metadata)}


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "flipped gzip header byte"])
async def test_damaged_archive_is_refused_and_changes_nothing(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    two_users: tuple[int, int],
    tmp_path: Path,
    damage: str,
) -> None:
    """A cut-short archive, or one with one byte flipped, raises BackupError; no row changes."""
    ann, _ = two_users
    path = Path((await backup_user(engine, ann, tmp_path / "backups", keep=8))["path"])
    async with sessions.begin() as session:
        await session.execute(delete(User).where(User.id == ann))
    damage_file(path, damage)
    before = await rows_of(engine, ann)
    with pytest.raises(BackupError, match=r"truncated|corrupted|not a backup archive"):
        await restore_backup(engine, path)
    assert await rows_of(engine, ann) == before


async def test_restore_refuses_ids_taken_by_another_users_rows(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    two_users: tuple[int, int],
    tmp_path: Path,
) -> None:
    """An id of Ann's e-mails now used by Bob's e-mail: restoring Ann raises, nothing changes."""
    ann, bob = two_users
    path = Path((await backup_user(engine, ann, tmp_path / "backups", keep=8))["path"])
    async with sessions.begin() as session:
        anns_email = await session.scalar(
            select(OutboundEmail.id).where(OutboundEmail.user_id == ann).limit(1)
        )
        await session.execute(delete(User).where(User.id == ann))
        bobs_email = await session.scalar(
            select(OutboundEmail.id).where(OutboundEmail.user_id == bob).limit(1)
        )
        await session.execute(
            update(OutboundEmail).where(OutboundEmail.id == bobs_email).values(id=anns_email)
        )
    before = await rows_of(engine, bob), await rows_of(engine, ann)
    with pytest.raises(BackupError, match="belong to another user's rows"):
        await restore_backup(engine, path)
    assert (await rows_of(engine, bob), await rows_of(engine, ann)) == before


async def test_retention_keeps_exactly_backup_keep_with_owner_only_modes(
    engine: AsyncEngine, two_users: tuple[int, int], tmp_path: Path
) -> None:
    """After five backups with BACKUP_KEEP=3 the newest three remain, files 0600, dir 0700."""
    ann, _ = two_users
    made = [
        Path((await backup_user(engine, ann, tmp_path / "backups", keep=3))["path"])
        for _ in range(5)
    ]
    directory = tmp_path / "backups" / str(ann)
    assert list_backups(directory) == made[:1:-1]
    assert sorted(p.name for p in directory.iterdir()) == sorted(p.name for p in made[2:])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in made[2:]} == {0o600}


async def test_weekly_backup_fans_out_one_job_per_user_and_week(
    settings: Settings,
    pool: JobsPool,
    engine: AsyncEngine,
    two_users: tuple[int, int],
    tmp_path: Path,
) -> None:
    """backup_user_data enqueues one backup per user; a second run that week enqueues none."""
    files_settings = settings.model_copy(update={"backup_dir": tmp_path / "weekly"})
    functions = [backup_user_data, backup_one_user]
    first = await pool.enqueue_job("backup_user_data")
    assert first is not None
    await run_burst(await make_worker(files_settings, functions, family="files"))
    assert await first.result(timeout=1) == {"enqueued": 2, "already_enqueued": 0}
    for user_id in two_users:
        assert len(list_backups(tmp_path / "weekly" / str(user_id))) == 1
    second = await pool.enqueue_job("backup_user_data", _job_id="again")
    assert second is not None
    await run_burst(await make_worker(files_settings, functions, family="files"))
    assert await second.result(timeout=1) == {"enqueued": 0, "already_enqueued": 2}


def test_tables_hanging_off_user_owned_tables_are_found_without_naming_them() -> None:
    """A new table with user_id, and its child without one, are both owned; others are not."""
    metadata = MetaData()
    Table("users", metadata, Column("id", Integer, primary_key=True))
    Table(
        "notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("user_id", ForeignKey("users.id")),
    )
    Table(
        "note_tags",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("note_id", ForeignKey("notes.id")),
    )
    Table("audit", metadata, Column("id", Integer, primary_key=True), Column("x", String))
    found = {owned.name: owned for owned in owned_tables(metadata)}
    assert list(found) == ["users", "notes", "note_tags"]
    clause = str(found["note_tags"].owned_by(7).compile(compile_kwargs={"literal_binds": True}))
    assert "note_tags.note_id IN (SELECT notes.id" in clause and "notes.user_id = 7" in clause


async def test_restore_command_restores_and_refuses_a_damaged_file(
    engine: AsyncEngine,
    settings: Settings,
    two_users: tuple[int, int],
    tmp_path: Path,
) -> None:
    """`python -m jobs restore` prints what it restored, and exits 2 naming a damaged file."""
    ann, _ = two_users
    path = Path((await backup_user(engine, ann, tmp_path / "backups", keep=8))["path"])
    env = {**os.environ, "DATABASE_URL": str(settings.database_url)}
    code, out, err = await run_command("restore", str(path), env=env)
    assert code == 0, err
    assert out.startswith(f"restored 13 rows of user {ann} from {path}")
    damage_file(path, "truncated")
    code, out, err = await run_command("restore", str(path), env=env)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"jobs: {path} is truncated or corrupted")
    async with engine.connect() as connection:
        assert await connection.scalar(select(User.email).where(User.id == ann))
