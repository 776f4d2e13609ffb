"""Vacuuming and analysing the database, where PostgreSQL and SQLite differ most.

PostgreSQL: ``VACUUM (ANALYZE)`` one table at a time on an autocommit connection (VACUUM cannot
run in a transaction) with ``lock_timeout`` set, so a table the application holds a conflicting
lock on is skipped instead of making the application queue behind the vacuum. Size and dead
rows come from ``pg_total_relation_size`` and ``pg_stat_user_tables.n_dead_tup``.

SQLite: ``ANALYZE`` and ``PRAGMA optimize``, and ``VACUUM`` (which rewrites the whole file) only
when the share of free pages exceeds a threshold. Sizes come from the ``dbstat`` virtual table
when SQLite was built with it; SQLite has no dead rows, its free pages are reported instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobs.db.layout import layout_of, qualified_name

__all__ = ["TableReport", "optimize_postgres", "optimize_sqlite", "sqlite_page_counts"]

#: PostgreSQL's SQLSTATE for ``lock_not_available`` (what ``lock_timeout`` raises).
LOCK_NOT_AVAILABLE = "55P03"


@dataclass
class TableReport:
    """What optimising one table found and did."""

    table: str
    status: str = "optimized"  # or "skipped"
    size_bytes_before: int | None = None
    size_bytes_after: int | None = None
    dead_rows_before: int | None = None
    dead_rows_after: int | None = None
    seconds: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data for the job result."""
        return {key: value for key, value in asdict(self).items() if key != "table"}


@dataclass
class SqliteReport:
    """What optimising a SQLite database found and did."""

    tables: list[TableReport] = field(default_factory=list)
    free_pages_before: int = 0
    free_pages_after: int = 0
    page_count_before: int = 0
    page_count_after: int = 0
    vacuumed: bool = False
    seconds: float = 0.0


def _sqlstate(error: BaseException) -> str | None:
    current: BaseException | None = error
    while current is not None:
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


async def _postgres_stats(connection: AsyncConnection, table: str) -> tuple[int | None, int | None]:
    row = (
        await connection.execute(
            text(
                "SELECT pg_total_relation_size(to_regclass(:name)), "
                "(SELECT n_dead_tup FROM pg_stat_user_tables "
                " WHERE relid = to_regclass(:name))"
            ),
            {"name": table},
        )
    ).one()
    return row[0], row[1]


async def optimize_postgres(
    engine: AsyncEngine, tables: Sequence[Table], *, lock_timeout: float
) -> list[TableReport]:
    """``VACUUM (ANALYZE)`` each of ``tables`` in turn; a table whose lock times out is skipped."""
    layout = layout_of(engine)
    reports = []
    async with engine.connect() as raw:
        connection = await raw.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'"))
        for table in tables:
            report = TableReport(table.name)
            qualified = qualified_name(layout, table)
            started = time.perf_counter()
            try:
                report.size_bytes_before, report.dead_rows_before = await _postgres_stats(
                    connection, qualified
                )
                await connection.execute(text(f"VACUUM (ANALYZE) {qualified}"))
                report.size_bytes_after, report.dead_rows_after = await _postgres_stats(
                    connection, qualified
                )
            except DBAPIError as error:
                if _sqlstate(error) != LOCK_NOT_AVAILABLE:
                    raise
                report.status = "skipped"
                report.reason = f"lock not granted within {lock_timeout:g}s"
            report.seconds = round(time.perf_counter() - started, 3)
            reports.append(report)
        await connection.execute(text("RESET lock_timeout"))
    return reports


async def sqlite_page_counts(connection: AsyncConnection) -> tuple[int, int]:
    """``(page_count, freelist_count)`` of the SQLite database."""
    pages = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
    free = (await connection.execute(text("PRAGMA freelist_count"))).scalar_one()
    return int(pages), int(free)


async def _sqlite_sizes(connection: AsyncConnection) -> dict[str, int] | None:
    try:
        rows = await connection.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
    except DBAPIError:
        return None  # SQLite built without the dbstat virtual table
    return {str(name): int(size) for name, size in rows}


async def optimize_sqlite(
    engine: AsyncEngine, tables: Sequence[Table], *, vacuum_free_ratio: float
) -> SqliteReport:
    """``ANALYZE`` and ``PRAGMA optimize``; ``VACUUM`` when free pages exceed the ratio."""
    report = SqliteReport()
    async with engine.connect() as raw:
        connection = await raw.execution_options(isolation_level="AUTOCOMMIT")
        report.page_count_before, report.free_pages_before = await sqlite_page_counts(connection)
        sizes_before = await _sqlite_sizes(connection) or {}
        started = time.perf_counter()
        await connection.execute(text("ANALYZE"))
        await connection.execute(text("PRAGMA optimize"))
        ratio = report.free_pages_before / max(report.page_count_before, 1)
        if ratio > vacuum_free_ratio:
            await connection.execute(text("VACUUM"))
            report.vacuumed = True
        report.seconds = round(time.perf_counter() - started, 3)
        report.page_count_after, report.free_pages_after = await sqlite_page_counts(connection)
        sizes_after = await _sqlite_sizes(connection) or {}
    for table in tables:
        report.tables.append(
            TableReport(
                table.name,
                size_bytes_before=sizes_before.get(table.name),
                size_bytes_after=sizes_after.get(table.name),
            )
        )
    return report
