"""Sweeping ``TEMP_DIR``: old files out, emptied directories removed, links never followed.

The walk holds one open directory per level of depth and nothing else, so a directory of tens
of thousands of files costs no more memory than a small one. Every operation is relative to
an open directory descriptor (``dir_fd``) and directories are entered with ``O_NOFOLLOW``, so a
symbolic link is only ever removed as a link, and a directory swapped for a link mid-run is
refused instead of followed out of ``TEMP_DIR``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CleanupReport", "sweep_temp_dir"]

logger = logging.getLogger(__name__)

_OPEN_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass
class CleanupReport:
    """What one sweep did; flat counts, ready to be exported as metrics."""

    files_removed: int = 0
    bytes_freed: int = 0
    links_removed: int = 0
    dirs_removed: int = 0
    vanished: int = 0
    failed: int = 0
    refused: int = 0
    temp_dir_missing: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        """The report as a job result."""
        return asdict(self)


@dataclass
class _Directory:
    """A directory being swept: its descriptor, its entries and what happened inside it."""

    fd: int
    entries: Iterator[os.DirEntry[str]]
    path: str
    name: str | None = None
    old: bool = False
    removed_any: bool = False

    def close(self) -> None:
        close = getattr(self.entries, "close", None)
        if close is not None:
            close()
        os.close(self.fd)


def _open_directory(fd: int, path: str, name: str | None = None, old: bool = False) -> _Directory:
    try:
        return _Directory(fd, os.scandir(fd), path, name, old)
    except BaseException:
        os.close(fd)
        raise


class _Sweep:
    def __init__(self, cutoff: float) -> None:
        self.cutoff = cutoff
        self.report = CleanupReport()
        self.stack: list[_Directory] = []

    def run(self, root_fd: int) -> CleanupReport:
        self.stack.append(_open_directory(root_fd, "."))
        try:
            while self.stack:
                directory = self.stack[-1]
                entry = next(directory.entries, None)
                if entry is None:
                    self._leave(self.stack.pop())
                else:
                    self._visit(directory, entry)
        finally:
            for directory in self.stack:
                directory.close()
        return self.report

    def _visit(self, directory: _Directory, entry: os.DirEntry[str]) -> None:
        path = f"{directory.path}/{entry.name}".removeprefix("./")
        try:
            status = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(status.st_mode):
                self._enter(directory, entry.name, path, status)
            elif status.st_mtime < self.cutoff:
                os.unlink(entry.name, dir_fd=directory.fd)
                directory.removed_any = True
                if stat.S_ISLNK(status.st_mode):
                    self.report.links_removed += 1
                else:
                    self.report.files_removed += 1
                    self.report.bytes_freed += status.st_size
        except FileNotFoundError:
            self.report.vanished += 1
            logger.info("temp file %s vanished during cleanup; skipped", path)
        except OSError as error:
            self.report.failed += 1
            logger.warning("cannot remove temp file %s (%s); skipped", path, error.strerror)

    def _enter(self, parent: _Directory, name: str, path: str, status: os.stat_result) -> None:
        try:
            fd = os.open(name, _OPEN_DIR_FLAGS, dir_fd=parent.fd)
        except OSError as error:
            if isinstance(error, FileNotFoundError):
                raise
            self.report.refused += 1
            logger.warning("refused to enter %s: no longer a plain directory (%s)", path, error)
            return
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
            os.close(fd)
            self.report.refused += 1
            logger.warning("refused to enter %s: it was replaced during cleanup", path)
            return
        self.stack.append(_open_directory(fd, path, name, status.st_mtime < self.cutoff))

    def _leave(self, directory: _Directory) -> None:
        directory.close()
        if directory.name is None or not (directory.removed_any or directory.old):
            return
        parent = self.stack[-1]
        try:
            os.rmdir(directory.name, dir_fd=parent.fd)
        except OSError:
            return  # not empty (or gone): it stays
        parent.removed_any = True
        self.report.dirs_removed += 1


def sweep_temp_dir(root: Path, max_age: dt.timedelta, *, now: float | None = None) -> CleanupReport:
    """Remove files under ``root`` last modified more than ``max_age`` ago, then empty dirs.

    A directory is removed when it is empty after the sweep and either the sweep emptied it or
    it is itself older than ``max_age``; ``root`` is never removed. A missing ``root`` is
    reported (``temp_dir_missing``) and logged as a warning.
    """
    cutoff = (time.time() if now is None else now) - max_age.total_seconds()
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        logger.warning("TEMP_DIR %s does not exist or is not a directory; nothing cleaned", root)
        return CleanupReport(temp_dir_missing=True)
    return _Sweep(cutoff).run(root_fd)
