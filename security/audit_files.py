"""Append-only JSON-lines files that mirror the audit log: history that survives a wiped Redis.

``DATA_DIR/audit/`` holds ``audit-000001.jsonl``, ``audit-000002.jsonl``... (a
record a line, canonical JSON, a new segment every ``segment_records``
records) and ``checkpoints.jsonl``. Lines are only ever appended and fsynced.
One process writes (the monitor's mirror task); an advisory ``flock`` on
``.lock`` makes a second writer stand aside instead of interleaving lines. A
torn last line (a crash mid-write) is cut off on open: the record is still in
Redis and is mirrored again. :class:`AuditMirror` moves records both ways:
Redis to the files, and back into a Redis that lost them.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.exceptions import ResponseError

from watchfloor.core import keys
from watchfloor.security.audit_chain import (
    AuditError,
    AuditIntegrityError,
    canonical,
    verify_records,
)

logger = logging.getLogger(__name__)

_RESTORE_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'seq', 'hash')
if (cur[1] or '0') ~= ARGV[1] or (cur[2] or '') ~= ARGV[2] then
  redis.call('DEL', KEYS[3])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('RENAME', KEYS[3], KEYS[2])
  else
    for _, e in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do
      redis.call('XADD', KEYS[2], e[1], e[2][1], e[2][2])
    end
    redis.call('DEL', KEYS[3])
  end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'hash', ARGV[4])
return 1
"""

READ_CHUNK = 1000
SEGMENT_PREFIX = "audit-"
CHECKPOINTS_NAME = "checkpoints.jsonl"
DEFAULT_SEGMENT_RECORDS = 100_000


class AuditFileError(AuditError):
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


class AuditLogLike(Protocol):
    """What the mirror needs of ``security.audit.AuditLog``."""

    redis: aioredis.Redis
    public_keys: list[Ed25519PublicKey]

    async def head(self) -> tuple[int, str]: ...
    async def read(self, after: int = 0, limit: int = 500) -> list[dict[str, Any]]: ...
    async def checkpoints(self, after: int = 0, limit: int = 10_000) -> list[dict[str, Any]]: ...
    async def last_checkpoint(self) -> dict[str, Any] | None: ...


class AuditMirror:
    """Keeps the files and Redis in step: Redis -> files (mirror), files -> Redis (restore).

    Restoring stages the missing records in a stream of its own, then one Lua
    script moves them in and sets the head only if the head is still the one the
    restore started from; so a restore racing an append (or another restore)
    never forks the chain, and the files are verified before anything is written.
    """

    def __init__(self, log: AuditLogLike, directory: str | Path, segment_records: int) -> None:
        self.log = log
        self.directory: Path | None = Path(directory)
        self.segment_records = segment_records
        self._files: AuditFiles | None = None
        self._restore_script = log.redis.register_script(_RESTORE_LUA)

    def close(self) -> None:
        if self._files is not None:
            self._files.close()
            self._files = None

    def mirrored(self) -> tuple[int, int]:
        """(last record seq, last checkpoint size) in the files, when this process mirrors."""
        if self._files is None:
            return (0, 0)
        return (self._files.last_seq, self._files.last_checkpoint)

    def _writer(self) -> AuditFiles | None:
        if self.directory is None:
            return None
        if self._files is None:
            files = AuditFiles(self.directory, self.segment_records)
            if not files.open():
                # Expected for a command run beside a running stack: its monitor mirrors.
                logger.info("audit files %s are mirrored by another process", self.directory)
                self.directory = None
                return None
            self._files = files
        return self._files

    async def mirror(self) -> int:
        """Append records and checkpoints not yet in the files; return records written."""
        files = self._writer()
        if files is None:
            return 0
        written = 0
        while records := await self.log.read(files.last_seq, READ_CHUNK):
            first = records[0]
            if files.last_seq and first.get("prev") != files.last_hash:
                raise AuditIntegrityError(
                    f"audit record {first.get('seq')} in Redis does not chain to the files"
                )
            written += await asyncio.to_thread(files.append_records, records)
        await self._check_last_mirrored(files)
        checkpoints = await self.log.checkpoints(files.last_checkpoint)
        if checkpoints:
            await asyncio.to_thread(files.append_checkpoints, checkpoints)
        return written

    async def _check_last_mirrored(self, files: AuditFiles) -> None:
        """Redis's record at the files' last seq must be the files' one.

        Records are chained, so one comparison covers every mirrored record Redis
        still holds: a Redis-only rewrite of the tail (hashes recomputed, so the
        chain in Redis looks whole) is caught here, before anything signs it.
        """
        if not files.last_seq:
            return
        entries: Any = await self.log.redis.xrange(
            keys.AUDIT, min=f"{files.last_seq}-0", max=f"{files.last_seq}-0"
        )
        if not entries:
            return  # trimmed (or lost: restore writes it back)
        record = json.loads(entries[0][1][b"r"])
        if record.get("hash") != files.last_hash:
            raise AuditIntegrityError(
                f"audit record {files.last_seq} in Redis differs from the mirrored files: "
                "Redis was rewritten"
            )

    async def restore(self) -> int:
        """Write back records the files hold and Redis lost; return how many."""
        if self.directory is None or not self.directory.exists():
            return 0
        seq, head_hash = await self.log.head()
        if self._files is not None:
            files_last = self._files.last_seq
        else:
            last_line = await asyncio.to_thread(last_record, self.directory)
            files_last = int(last_line["seq"]) if last_line else 0
        if files_last <= seq:
            return 0
        if seq == 0 and await self.log.redis.exists(keys.AUDIT):
            raise AuditIntegrityError("the audit stream exists but has no head")
        checkpoints = await asyncio.to_thread(self._check_files)
        temp = f"{keys.AUDIT}:restore:{uuid.uuid4().hex}"
        try:
            last = await self._stage(temp, seq, head_hash)
        except BaseException:
            await self.log.redis.delete(temp)
            raise
        done = await self._restore_script(  # it renames or deletes ``temp``
            keys=[keys.AUDIT_HEAD, keys.AUDIT, temp],
            args=[str(seq), head_hash, str(last["seq"]), last["hash"]],
        )
        if not done:
            logger.info("audit restore lost the race to another process")
            return 0
        await self._restore_checkpoints(checkpoints)
        restored = int(last["seq"]) - seq
        logger.warning("audit restored from files records=%d head=%d", restored, last["seq"])
        return restored

    def _check_files(self) -> list[dict[str, Any]]:
        """The files' checkpoints, after the files verified (chain only without a key)."""
        assert self.directory is not None
        checkpoints = read_checkpoints(self.directory)
        pinned = self.log.public_keys
        result = verify_records(read_records(self.directory), checkpoints if pinned else [], pinned)
        if not result.ok:
            raise AuditIntegrityError(
                f"audit files fail verification at record {result.first_bad_seq}: {result.reason}"
            )
        return checkpoints

    async def _stage(self, temp: str, seq: int, head_hash: str) -> dict[str, Any]:
        """Copy the files' records after ``seq`` into the stream ``temp``; return the last."""
        assert self.directory is not None
        batch: list[dict[str, Any]] = []
        last: dict[str, Any] = {}
        for record in read_records(self.directory):
            if record["seq"] == seq and record["hash"] != head_hash:
                raise AuditIntegrityError(f"Redis and the audit files disagree at record {seq}")
            if record["seq"] > seq:
                batch.append(record)
            if len(batch) >= READ_CHUNK:
                await self._push(temp, batch)
                last, batch = batch[-1], []
        if batch:
            await self._push(temp, batch)
            last = batch[-1]
        return last

    async def _push(self, stream: str, records: list[dict[str, Any]]) -> None:
        async with self.log.redis.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.xadd(stream, {"r": canonical(record)}, id=f"{record['seq']}-0")
            await pipe.execute()

    async def _restore_checkpoints(self, checkpoints: list[dict[str, Any]]) -> None:
        last = await self.log.last_checkpoint()
        last_size = int(last["size"]) if last else 0
        for checkpoint in checkpoints:
            if checkpoint["size"] > last_size:
                try:
                    await self.log.redis.xadd(
                        keys.AUDIT_CHECKPOINTS,
                        {"c": canonical(checkpoint)},
                        id=f"{checkpoint['size']}-0",
                    )
                except ResponseError:
                    continue
