"""The spool: a bounded, fsynced, append-only file of batches waiting for Redis.

While Redis is unreachable the collector appends each accepted batch here and
answers 202 only after ``fsync`` returned, so an accepted batch survives a
crash of the collector and of the machine. Records are replayed in order when
Redis returns (also after a restart: :meth:`Spool.open` finds them again).

File layout (``DATA_DIR/spool/``): ``batches.spool`` holds records of
``<u32 length><u32 crc32><u8 flags><payload>``; ``offset`` holds the byte
offset up to which records are known to be in Redis, replaced atomically
(write, fsync, rename). A record cut short by a crash mid-write was never
acknowledged and is cut off on open. When every record is replayed, the file
is truncated under the append lock, so no append can slip in between.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from watchfloor.collector.errors import SpoolFull

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIB")
FLAG_DEDUPED = 0x01
"""The batch already went through duplicate suppression before it was spooled."""
SPOOL_FILE = "batches.spool"
OFFSET_FILE = "offset"


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    payload: bytes
    flags: int
    end: int
    """Byte offset just after this record (what to commit once it is in Redis)."""

    @property
    def deduped(self) -> bool:
        return bool(self.flags & FLAG_DEDUPED)


class Spool:
    """An append-only spool file with a committed replay offset.

    Appends are serialised by :attr:`lock`; file I/O runs in a worker thread so
    that an ``fsync`` never stalls the event loop.
    """

    def __init__(self, directory: Path | str, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.lock = asyncio.Lock()
        self._path = self.directory / SPOOL_FILE
        self._offset_path = self.directory / OFFSET_FILE
        self._end = 0
        self._offset = 0
        self._records = 0
        self._fh: int | None = None
        self._stamps: deque[tuple[int, float | None]] = deque()
        """(end offset, acceptance time) of the records not yet replayed, oldest first;
        ``None`` for records found on open (accepted by an earlier process)."""

    # --- state ------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """True while some record is not yet known to be in Redis."""
        return self._offset < self._end

    @property
    def depth_bytes(self) -> int:
        return self._end - self._offset

    @property
    def depth_batches(self) -> int:
        return self._records

    @property
    def oldest_accepted_at(self) -> float | None:
        """Acceptance time of the oldest record not yet replayed (``None``: none, or unknown).

        Use :attr:`recovered` to tell "unknown" (records left by an earlier process) apart.
        """
        return self._stamps[0][1] if self._stamps else None

    @property
    def recovered(self) -> bool:
        """True while records left by an earlier process wait for their replay."""
        return bool(self._stamps) and self._stamps[0][1] is None

    # --- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory, find the valid end of the file and the replay offset."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fh = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset = _read_offset(self._offset_path)
        self._end, self._records = self._scan()
        if self._offset > self._end:
            # The file was truncated after a full replay but the offset not yet reset.
            self._offset = 0
            self._write_offset(0)
            self._records = 0
        self._stamps.clear()
        if self.pending:
            self._stamps.append((self._end, None))
            logger.warning(
                "spool holds batches to replay batches=%d bytes=%d", self._records, self.depth_bytes
            )

    def close(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None

    def _scan(self) -> tuple[int, int]:
        """Walk the records; cut off a torn tail; return (valid end, records after offset)."""
        data = self._path.read_bytes()
        pos, count = 0, 0
        while pos + _HEADER.size <= len(data):
            length, crc, _flags = _HEADER.unpack_from(data, pos)
            body_end = pos + _HEADER.size + length
            if body_end > len(data) or zlib.crc32(data[pos + 8 : body_end]) != crc:
                break
            if pos >= self._offset:
                count += 1
            pos = body_end
        if pos < len(data):
            self._set_aside(data[pos:], pos)
            os.ftruncate(self._fh, pos)  # type: ignore[arg-type]
            os.fsync(self._fh)  # type: ignore[arg-type]
        return pos, count

    def _set_aside(self, tail: bytes, pos: int) -> None:
        # A torn tail was never acknowledged; anything else would be damage. Keep the
        # bytes for inspection rather than silently dropping them.
        aside = self.directory / f"damaged-{int(time.time())}-{pos}.bin"
        aside.write_bytes(tail)
        logger.error("spool tail unreadable, set aside path=%s bytes=%d", aside, len(tail))

    # --- appending --------------------------------------------------------------------

    async def append(
        self, payload: bytes, *, deduped: bool, accepted_at: float | None = None
    ) -> None:
        """Append one batch and fsync it; raise :class:`SpoolFull` if it does not fit."""
        accepted_at = time.time() if accepted_at is None else accepted_at
        record = _encode(payload, FLAG_DEDUPED if deduped else 0)
        async with self.lock:
            if self._end + len(record) > self.max_bytes:
                raise SpoolFull(
                    f"Redis is unreachable and the spool is full ({self.max_bytes} bytes)"
                )
            await asyncio.to_thread(self._write, record)
            self._end += len(record)
            self._records += 1
            self._stamps.append((self._end, accepted_at))

    def _write(self, record: bytes) -> None:
        assert self._fh is not None, "spool not open"
        view = memoryview(record)
        while view:
            view = view[os.write(self._fh, view) :]
        os.fsync(self._fh)

    # --- replaying --------------------------------------------------------------------

    async def read(
        self, max_records: int = 64, max_bytes: int = 8 * 1024 * 1024
    ) -> list[SpoolRecord]:
        """The next records after the committed offset (without consuming them)."""
        if not self.pending:
            return []
        return await asyncio.to_thread(self._read, self._offset, self._end, max_records, max_bytes)

    def _read(self, start: int, end: int, max_records: int, max_bytes: int) -> list[SpoolRecord]:
        out: list[SpoolRecord] = []
        with open(self._path, "rb") as fh:
            fh.seek(start)
            pos, size = start, 0
            while pos < end and len(out) < max_records and size < max_bytes:
                length, _crc, flags = _HEADER.unpack(fh.read(_HEADER.size))
                payload = fh.read(length)
                pos += _HEADER.size + length
                size += length
                out.append(SpoolRecord(payload, flags, pos))
        return out

    async def commit(self, offset: int, records: int) -> None:
        """Remember that everything before ``offset`` is in Redis."""
        await asyncio.to_thread(self._write_offset, offset)
        self._offset = offset
        self._records = max(0, self._records - records)
        while self._stamps and self._stamps[0][0] <= offset:
            self._stamps.popleft()

    async def reset_if_drained(self) -> bool:
        """Empty the file once everything is replayed; False if new records came in."""
        async with self.lock:
            if self.pending:
                return False
            await asyncio.to_thread(self._truncate)
            self._end = self._offset = self._records = 0
            self._stamps.clear()
            return True

    def _truncate(self) -> None:
        # Truncate first, then reset the offset: a crash in between leaves an offset
        # beyond the end, which open() recognises; the other order would replay twice.
        os.ftruncate(self._fh, 0)  # type: ignore[arg-type]
        os.fsync(self._fh)  # type: ignore[arg-type]
        self._write_offset(0)

    def _write_offset(self, offset: int) -> None:
        tmp = self._offset_path.with_suffix(".tmp")
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(str(offset))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._offset_path)


def _encode(payload: bytes, flags: int) -> bytes:
    body = bytes([flags]) + payload
    return struct.pack("<II", len(payload), zlib.crc32(body)) + body


def _read_offset(path: Path) -> int:
    try:
        return max(0, int(path.read_text(encoding="ascii").strip() or 0))
    except FileNotFoundError:
        return 0
    except ValueError:
        logger.error("spool offset file unreadable, replaying from the start path=%s", path)
        return 0
