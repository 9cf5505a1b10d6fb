"""Append-only JSON-lines files that mirror the audit log: history that survives a wiped Redis.

``DATA_DIR/audit/`` holds ``audit-000001.jsonl``, ``audit-000002.jsonl``... (a
record a line, canonical JSON, a new segment every ``segment_records``
records) and ``checkpoints.jsonl``. Lines are only ever appended and fsynced.
One process writes (the monitor's mirror task); an advisory ``flock`` on
``.lock`` makes a second writer stand aside instead of interleaving lines. A
torn last line (a crash mid-write) is cut off on open: the record is still in
Redis and is mirrored again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from security.audit_chain import canonical

logger = logging.getLogger(__name__)

SEGMENT_PREFIX = "audit-"
CHECKPOINTS_NAME = "checkpoints.jsonl"
DEFAULT_SEGMENT_RECORDS = 100_000


class AuditFileError(Exception):
    """An audit file cannot be read, parsed or written."""


def segment_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{SEGMENT_PREFIX}[0-9]*.jsonl"))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Parsed lines of one file; a line that is not a JSON object raises AuditFileError."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):
                break  # a line still being written (or torn by a crash) is not a record yet
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                raise AuditFileError(f"{path.name} line {number} is not JSON") from None
            if not isinstance(value, dict):
                raise AuditFileError(f"{path.name} line {number} is not a JSON object")
            yield value


def read_records(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Every mirrored record, in file order (segments sorted by name)."""
    for path in segment_paths(Path(directory)):
        yield from read_jsonl(path)


def last_record(directory: str | Path) -> dict[str, Any] | None:
    """The last complete record of the files (reads only the last segment)."""
    last = None
    for path in reversed(segment_paths(Path(directory))):
        for last in read_jsonl(path):  # noqa: B007 - only the last one is wanted
            pass
        if last is not None:
            return last
    return None


def read_checkpoints(directory: str | Path) -> list[dict[str, Any]]:
    path = Path(directory) / CHECKPOINTS_NAME
    return list(read_jsonl(path)) if path.exists() else []


class AuditFiles:
    """The single writer of an audit directory."""

    def __init__(
        self, directory: str | Path, segment_records: int = DEFAULT_SEGMENT_RECORDS
    ) -> None:
        self.directory = Path(directory)
        self.segment_records = segment_records
        self.last_seq = 0
        self.last_hash = ""
        self.last_checkpoint = 0
        self._lock: IO[bytes] | None = None
        self._segment: Path | None = None
        self._segment_count = 0

    def open(self) -> bool:
        """Take the writer lock and find where the files end; False if another writer holds it."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = (self.directory / ".lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle
        self._scan()
        return True

    def close(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _scan(self) -> None:
        segments = segment_paths(self.directory)
        if segments:
            self._segment = segments[-1]
            _cut_torn_line(self._segment)
            lines = list(read_jsonl(self._segment))
            self._segment_count = len(lines)
            if lines:
                self.last_seq, self.last_hash = int(lines[-1]["seq"]), str(lines[-1]["hash"])
        checkpoints = self.directory / CHECKPOINTS_NAME
        if checkpoints.exists():
            _cut_torn_line(checkpoints)
            found = list(read_jsonl(checkpoints))
            self.last_checkpoint = int(found[-1]["size"]) if found else 0

    def append_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append records after ``last_seq`` (fsynced); return how many were written."""
        written = 0
        batch: list[bytes] = []
        for record in records:
            if self._segment is None or self._segment_count + len(batch) >= self.segment_records:
                written += self._flush(batch)
                batch = []
                self._roll()
            batch.append(canonical(dict(record)) + b"\n")
            self.last_seq, self.last_hash = int(record["seq"]), str(record["hash"])
        return written + self._flush(batch)

    def _flush(self, lines: list[bytes]) -> int:
        if not lines:
            return 0
        assert self._segment is not None
        write_synced(self._segment, b"".join(lines))
        self._segment_count += len(lines)
        return len(lines)

    def _roll(self) -> None:
        number = len(segment_paths(self.directory)) + 1
        self._segment = self.directory / f"{SEGMENT_PREFIX}{number:06d}.jsonl"
        self._segment_count = 0
        write_synced(self._segment, b"")
        _fsync_dir(self.directory)

    def append_checkpoints(self, checkpoints: Iterable[Mapping[str, Any]]) -> int:
        lines = []
        for cp in checkpoints:
            if int(cp["size"]) <= self.last_checkpoint:
                continue
            lines.append(canonical(dict(cp)) + b"\n")
            self.last_checkpoint = int(cp["size"])
        if lines:
            path = self.directory / CHECKPOINTS_NAME
            new = not path.exists()
            write_synced(path, b"".join(lines))
            if new:
                _fsync_dir(self.directory)
        return len(lines)


def write_synced(path: Path, data: bytes, *, append: bool = True) -> None:
    """Write (append, or replace) ``data`` to a 0600 file and fsync it before returning."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_line(path: Path) -> None:
    """Drop a last line without its newline: a write a crash interrupted."""
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(max(0, size - 1_048_576))
        tail = handle.read()
        cut = size - len(tail) + tail.rfind(b"\n") + 1
        logger.warning("cut a torn last line file=%s bytes=%d", path.name, size - cut)
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
