"""Counting the Redis commands of one database with ``MONITOR`` (``redis-cli`` in its own process).

MONITOR shows every command a client sends, and every command a Lua script runs (marked
``lua``), with the database and the client's address. From that: commands sent by clients,
commands executed (including those inside scripts), and round trips — a client's commands are
one round trip each, except that MULTI … EXEC (sent as one pipeline by every client here) is one.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["CommandCount", "Monitor"]

_LINE = re.compile(r'^[\d.]+ \[(\d+) ([^\]]+)\] "([A-Za-z]+)"')


@dataclass(frozen=True)
class CommandCount:
    """Commands seen in one database during one window."""

    sent: int
    executed: int
    round_trips: int
    by_command: dict[str, int]


class Monitor:
    """Records MONITOR output to a file while the ``with`` block runs."""

    def __init__(self, redis_url: str, db: int, path: Path, exclude: set[str]) -> None:
        self.command = ["redis-cli", "-u", redis_url, "monitor"]
        self.db = db
        self.path = path
        self.exclude = exclude
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Monitor:
        self.file = self.path.open("wb")
        self.process = subprocess.Popen(self.command, stdout=self.file)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait()
        self.file.close()

    def count(self) -> CommandCount:
        """What was seen in the database, leaving out the excluded client addresses."""
        sent = executed = round_trips = 0
        by_command: dict[str, int] = defaultdict(int)
        in_multi: dict[str, bool] = defaultdict(bool)
        for raw in self.path.read_bytes().splitlines():
            match = _LINE.match(raw.decode(errors="replace"))
            if match is None or int(match.group(1)) != self.db:
                continue
            client, command = match.group(2), match.group(3).upper()
            if client in self.exclude:
                continue
            executed += 1
            by_command[command if client != "lua" else f"({command})"] += 1
            if client == "lua":
                continue
            sent += 1
            if command == "MULTI":
                in_multi[client] = True
                round_trips += 1
            elif command == "EXEC":
                in_multi[client] = False
            elif not in_multi[client]:
                round_trips += 1
        return CommandCount(sent, executed, round_trips, dict(by_command))
