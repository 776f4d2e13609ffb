"""The temp-directory sweep on a real file system, and the files family's schedules."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import pytest
from arq.cron import CronJob
from arq.worker import get_kwargs

import jobs.files
from jobs import JobsPool
from jobs.constants import REFUSED_PAYLOAD_JOB
from jobs.files import cleanup_temp_files, sweep_temp_dir
from jobs.settings import Settings, load_settings
from jobs.worker import worker_options
from tests.conftest import make_worker, run_burst

DAY = dt.timedelta(hours=24)
NOW = 1_800_000_000.0
OLD = NOW - 25 * 3600
YOUNG = NOW - 23 * 3600


def make_file(path: Path, size: int, mtime: float) -> Path:
    """A file of ``size`` bytes last modified at ``mtime``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def make_link(path: Path, target: Path, mtime: float) -> Path:
    """A symbolic link whose own timestamp is ``mtime``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    os.utime(path, (mtime, mtime), follow_symlinks=False)
    return path


def test_only_files_older_than_the_threshold_are_removed(tmp_path: Path) -> None:
    """With a 24 h threshold a 25 h old file goes and a 23 h old one stays; bytes are counted."""
    root = tmp_path / "tmp"
    old = make_file(root / "old.bin", 1000, OLD)
    nested_old = make_file(root / "a" / "b" / "old.txt", 24, OLD)
    young = make_file(root / "young.bin", 500, YOUNG)
    report = sweep_temp_dir(root, DAY, now=NOW)
    assert not old.exists() and not nested_old.exists()
    assert young.exists()
    assert (report.files_removed, report.bytes_freed) == (2, 1024)


def test_emptied_directories_go_but_not_temp_dir_or_busy_ones(tmp_path: Path) -> None:
    """Emptied and stale empty dirs go bottom-up; TEMP_DIR, a fresh empty dir, a busy dir stay."""
    root = tmp_path / "tmp"
    make_file(root / "gone" / "deep" / "old.txt", 1, OLD)
    make_file(root / "kept" / "old.txt", 1, OLD)
    make_file(root / "kept" / "young.txt", 1, YOUNG)
    for name, mtime in (("fresh-empty", YOUNG), ("stale-empty", OLD)):
        (root / name).mkdir()
        os.utime(root / name, (mtime, mtime))
    make_file(root / "only.txt", 1, OLD)
    report = sweep_temp_dir(root, DAY, now=NOW)
    assert root.is_dir()
    assert sorted(p.name for p in root.iterdir()) == ["fresh-empty", "kept"]
    assert [p.name for p in (root / "kept").iterdir()] == ["young.txt"]
    assert report.dirs_removed == 3


def test_symlinks_are_removed_as_links_and_never_followed(tmp_path: Path) -> None:
    """Old links to a file and to a directory outside TEMP_DIR go; their targets stay whole."""
    root = tmp_path / "tmp"
    outside = tmp_path / "precious"
    target_file = make_file(outside / "keep.txt", 10, OLD)
    target_dir_file = make_file(outside / "dir" / "inner.txt", 10, OLD)
    make_link(root / "to-file", target_file, OLD)
    make_link(root / "sub" / "to-dir", outside / "dir", OLD)
    young_link = make_link(root / "young-link", target_file, YOUNG)
    report = sweep_temp_dir(root, DAY, now=NOW)
    assert target_file.read_bytes() == b"x" * 10
    assert target_dir_file.read_bytes() == b"x" * 10
    assert not (root / "to-file").is_symlink() and not (root / "sub").exists()
    assert young_link.is_symlink()
    assert (report.links_removed, report.files_removed, report.bytes_freed) == (2, 0, 0)


def test_files_vanishing_or_unremovable_mid_run_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A file deleted by someone else, and one replaced by a directory, are logged and skipped."""
    root = tmp_path / "tmp"
    for name in ("a", "b", "c", "d"):
        make_file(root / f"{name}.tmp", 1, OLD)
    real_unlink = os.unlink
    raced: list[str] = []

    def racing_unlink(name: str, *, dir_fd: int | None = None) -> None:
        if name == "b.tmp":  # another process deleted it after the sweep saw it
            real_unlink(name, dir_fd=dir_fd)
            raced.append(name)
        if name == "c.tmp":  # ...or put a directory in its place
            real_unlink(name, dir_fd=dir_fd)
            os.mkdir(root / name)
            raced.append(name)
        real_unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", racing_unlink)
    with caplog.at_level(logging.INFO, logger="jobs.files.cleanup"):
        report = sweep_temp_dir(root, DAY, now=NOW)
    assert sorted(raced) == ["b.tmp", "c.tmp"]
    assert (report.files_removed, report.vanished, report.failed) == (2, 1, 1)
    assert sorted(p.name for p in root.iterdir()) == ["c.tmp"]
    assert "b.tmp vanished" in caplog.text and "cannot remove temp file c.tmp" in caplog.text


def test_directory_swapped_for_a_link_mid_run_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subdirectory replaced by a link to elsewhere after the sweep saw it is not entered."""
    root = tmp_path / "tmp"
    make_file(root / "sub" / "old.txt", 1, OLD)
    victim = make_file(tmp_path / "elsewhere" / "old.txt", 1, OLD)
    real_open = os.open

    def swapping_open(
        path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        if path == "sub":  # someone swaps the directory for a link between stat and open
            (root / "sub").rename(tmp_path / "moved")
            (root / "sub").symlink_to(tmp_path / "elsewhere")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", swapping_open)
    report = sweep_temp_dir(root, DAY, now=NOW)
    assert report.refused == 1 and report.files_removed == 0
    assert victim.exists() and (tmp_path / "moved" / "old.txt").exists()


def test_missing_temp_dir_is_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A TEMP_DIR that does not exist gives temp_dir_missing and a warning naming it."""
    with caplog.at_level(logging.WARNING, logger="jobs.files.cleanup"):
        report = sweep_temp_dir(tmp_path / "absent", DAY, now=NOW)
    assert report.temp_dir_missing and report.files_removed == 0
    assert f"TEMP_DIR {tmp_path / 'absent'} does not exist" in caplog.text


@pytest.mark.usefixtures("engine")
async def test_cleanup_job_runs_in_a_worker_and_reports_counts(
    settings: Settings, tmp_path: Path, pool: JobsPool
) -> None:
    """cleanup_temp_files run by a files worker removes old files and returns its counts."""
    root = tmp_path / "worker-tmp"
    now = dt.datetime.now().timestamp()
    make_file(root / "x" / "old.bin", 300, now - 2 * 3600)
    make_file(root / "new.bin", 5, now)
    files_settings = settings.model_copy(
        update={"temp_dir": root, "temp_file_max_age": dt.timedelta(hours=1)}
    )
    job = await pool.enqueue_job("cleanup_temp_files")
    assert job is not None
    await run_burst(await make_worker(files_settings, [cleanup_temp_files], family="files"))
    result = await job.result(timeout=1)
    assert (result["files_removed"], result["bytes_freed"], result["dirs_removed"]) == (1, 300, 1)
    assert [p.name for p in root.iterdir()] == ["new.bin"]


def _fire_times(cron: CronJob, start: dt.datetime, count: int) -> list[str]:
    times = []
    cron.calculate_next(start)
    for _ in range(count):
        assert cron.next_run is not None
        times.append(cron.next_run.isoformat())
        cron.calculate_next(cron.next_run)
    return times


def test_files_crons_fire_daily_at_two_and_sundays_at_one() -> None:
    """cleanup_temp_files fires 02:00 daily and backup_user_data 01:00 Sundays, local time."""
    settings = load_settings(schedule_timezone="Europe/Berlin")
    crons = list(vars(jobs.files.WorkerSettings)["_declared_crons"])
    by_name = {c.name: c for c in worker_options("files", settings, [], crons)["cron_jobs"]}
    start = dt.datetime(2026, 3, 26, 12, tzinfo=dt.UTC)  # a Thursday; DST starts Sunday 29th
    assert _fire_times(by_name["cleanup_temp_files"], start, 4) == [
        "2026-03-27T01:00:00+00:00",
        "2026-03-28T01:00:00+00:00",
        "2026-03-29T01:00:00+00:00",  # 02:00 does not exist that day: shifted to 03:00 CEST
        "2026-03-30T00:00:00+00:00",
    ]
    assert _fire_times(by_name["backup_user_data"], start, 2) == [
        "2026-03-29T00:00:00+00:00",
        "2026-04-04T23:00:00+00:00",
    ]
    kwargs = get_kwargs(jobs.files.WorkerSettings)
    assert kwargs["queue_name"] == "jobs:queue:files"
    assert {f.name for f in kwargs["functions"]} == {
        "cleanup_temp_files",
        "backup_user_data",
        "backup_one_user",
        REFUSED_PAYLOAD_JOB,
    }
