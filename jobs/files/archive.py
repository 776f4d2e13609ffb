"""The backup archive: one gzip file of JSON Lines, written as a stream and checked on read.

Layout (format version 1), one JSON document per line::

    {"kind": "header", "format": "jobs-user-backup", "version": 1, "user_id": 7,
     "schema_revision": "0002", "created_at": "…", "tables": ["users", …]}
    {"kind": "row", "table": "users", "row": {"id": 7, …}}
    …
    {"kind": "manifest", "user_id": 7, "schema_revision": "0002", "rows": 1234,
     "counts": {"users": 1, …}, "sha256": "<hex of every byte before this line>"}

The manifest comes last, so a file cut short has none; its checksum covers every line before
it, and gzip's own CRC and the fixed gzip header catch damage inside the compressed stream.
The file is written under a hidden temporary name with mode 0600 and renamed when complete.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jobs.errors import JobsError
from jobs.files.values import encode_value

__all__ = [
    "ARCHIVE_SUFFIX",
    "ArchiveWriter",
    "BackupError",
    "read_archive",
]

FORMAT = "jobs-user-backup"
VERSION = 1
ARCHIVE_SUFFIX = ".jsonl.gz"
PARTIAL_SUFFIX = ".partial"
# What gzip.GzipFile(mtime=0) writes: magic, deflate, no flags, mtime 0, XFL 0, OS unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


class BackupError(JobsError):
    """A backup cannot be written, or a backup file is damaged, incomplete or not a backup."""


def _line(document: Mapping[str, Any]) -> bytes:
    text = json.dumps(document, default=encode_value, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


class ArchiveWriter:
    """Writes one archive to ``<path>.partial`` and renames it to ``path`` on :meth:`finish`."""

    def __init__(self, path: Path, header: Mapping[str, Any]) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}{PARTIAL_SUFFIX}")
        self.counts: dict[str, int] = {}
        self.digest = hashlib.sha256()
        self.header = {"kind": "header", "format": FORMAT, "version": VERSION, **header}
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.raw = os.fdopen(fd, "wb")
        self.gzip = gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0, compresslevel=6)
        self._write(_line(self.header))

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        self.gzip.write(data)

    def write_rows(self, table: str, rows: Iterable[Mapping[Any, Any]]) -> None:
        """Append rows of ``table``."""
        lines = [_line({"kind": "row", "table": table, "row": dict(row)}) for row in rows]
        self.counts[table] = self.counts.get(table, 0) + len(lines)
        self._write(b"".join(lines))

    def finish(self) -> dict[str, Any]:
        """Write the manifest, flush to disk and give the file its final name; the manifest."""
        manifest = {
            "kind": "manifest",
            "user_id": self.header["user_id"],
            "schema_revision": self.header["schema_revision"],
            "rows": sum(self.counts.values()),
            "counts": self.counts,
            "sha256": self.digest.hexdigest(),
        }
        self.gzip.write(_line(manifest))
        self.gzip.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        os.replace(self.partial, self.path)
        return manifest

    def abort(self) -> None:
        """Close and delete the partial file."""
        self.gzip.close()
        self.raw.close()
        self.partial.unlink(missing_ok=True)


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        if raw.read(len(GZIP_HEADER)) != GZIP_HEADER:
            raise BackupError(f"{path} is not a backup archive (unexpected gzip header)")
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield from stream


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _misplaced(number: int, document: dict[str, Any] | None, after_manifest: bool) -> str | None:
    """What is wrong with line ``number`` of an archive, if anything."""
    if document is None:
        return f"line {number} is not a JSON object"
    if after_manifest:
        return f"line {number} comes after the manifest"
    kind = document.get("kind")
    if (number == 1) != (kind == "header"):
        return f"line {number} is not where the header belongs"
    if kind == "header" and (document.get("format"), document.get("version")) != (FORMAT, VERSION):
        return f"it is not a version-{VERSION} {FORMAT} archive"
    if kind not in ("header", "row", "manifest"):
        return f"line {number} is of unknown kind {kind!r}"
    return None


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The header and row documents of an archive, checking it as it goes.

    Raises :class:`BackupError` — at the latest once the whole file has been read — when the
    file is truncated, corrupted, has no manifest, or its checksum or row counts do not match
    the manifest. Nothing read may be trusted before the iteration has ended.
    """
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    header: dict[str, Any] = {}
    manifest: dict[str, Any] | None = None
    damage: str | None = None
    try:
        for number, line in enumerate(_lines(path), start=1):
            if damage is not None:
                continue  # read on: gzip's CRC at the end may name the damage better
            document = _parse(line)
            damage = _misplaced(number, document, manifest is not None)
            if damage is not None or document is None:
                continue
            if document["kind"] == "manifest":
                manifest = document
                continue
            digest.update(line)
            if document["kind"] == "header":
                header = document
            if document["kind"] == "row":
                table = str(document.get("table"))
                counts[table] = counts.get(table, 0) + 1
            yield document
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise BackupError(f"{path} is truncated or corrupted ({error})") from None
    if damage is not None:
        raise BackupError(f"{path} is corrupted: {damage}")
    if manifest is None:
        raise BackupError(f"{path} is incomplete: it has no manifest")
    if manifest.get("sha256") != digest.hexdigest():
        raise BackupError(f"{path} is corrupted: its SHA-256 does not match the manifest")
    if manifest.get("counts") != counts:
        raise BackupError(f"{path} is corrupted: its row counts do not match the manifest")
    if manifest.get("user_id") != header.get("user_id"):
        raise BackupError(
            f"{path} is corrupted: the manifest names user {manifest.get('user_id')}, "
            f"the header user {header.get('user_id')}"
        )
