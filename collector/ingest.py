"""From request bytes to a batch kept safe: decode, validate, encrypt, write.

:func:`decode_body` turns a body into Python values by ``Content-Type`` (JSON
or msgpack) and ``Content-Encoding`` (identity or gzip, inflated with a hard
cap on the decompressed size, so a zip bomb costs at most 1 MiB of memory).
:class:`Ingestor` then validates the batch with the event contract
(``core.events``), refuses per event what cannot be stored (lone surrogates)
or lies outside the collector's clock window, encrypts the sensitive fields
and hands the batch to the :class:`~collector.writer.BatchWriter`, which drops
duplicates atomically with the write. Both transports (HTTP and WebSocket)
and the probes use the same ``Ingestor``.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from watchfloor.collector import faults
from watchfloor.collector.clock_report import InFlight
from watchfloor.collector.clock_window import ClockWindow
from watchfloor.collector.metrics import CollectorMetrics
from watchfloor.collector.text_check import may_hold_surrogates, refuse_lone_surrogates
from watchfloor.collector.writer import BatchWriter
from watchfloor.core.events import (
    EVENT_TYPES,
    MAX_BODY_BYTES,
    SENSITIVE_FIELDS,
    BatchError,
    BatchResult,
    Event,
    decode_json_body,
    decode_msgpack_body,
    validate_batch,
    validate_body,
)

logger = logging.getLogger(__name__)

JSON_TYPES = frozenset({"application/json", "text/json", "application/vnd.watchfloor+json"})
MSGPACK_TYPES = frozenset(
    {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
)
GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
GZIP_MAGIC = b"\x1f\x8b"

EventTransform = Callable[[Event], Event]


BodyFormat = Literal["json", "msgpack"]


def read_body(
    body: bytes, content_type: str, content_encoding: str = ""
) -> tuple[bytes, BodyFormat]:
    """The plain body and its format; :class:`BatchError` (400, 413, 415) when unusable."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES and media not in MSGPACK_TYPES:
        raise BatchError(
            f"unsupported Content-Type {media or 'none'!r}: send application/json or "
            "application/msgpack",
            status=415,
        )
    encoding = content_encoding.strip().lower()
    if encoding in GZIP_ENCODINGS:
        # aiohttp inflates request bodies itself unless the server runs with
        # auto_decompress=False (as the collector service does, to apply this cap);
        # a body that no longer starts with the gzip magic was inflated already.
        if body[:2] == GZIP_MAGIC:
            body = gunzip_capped(body, MAX_BODY_BYTES)
    elif encoding not in ("", "identity"):
        raise BatchError(f"unsupported Content-Encoding {encoding!r}: use gzip", status=415)
    return body, "msgpack" if media in MSGPACK_TYPES else "json"


def decode_body(body: bytes, fmt: BodyFormat) -> Any:
    """The decoded values of a plain body (``BatchError`` if unreadable)."""
    try:
        return decode_msgpack_body(body) if fmt == "msgpack" else decode_json_body(body)
    except UnicodeDecodeError as exc:
        raise BatchError(f"body is not valid {fmt}: a string is not UTF-8 ({exc.reason})") from None


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Inflate gzip ``data``, refusing (413) anything that grows beyond ``limit`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BatchError(f"body is not valid gzip: {exc}") from None
    if len(out) > limit:
        raise BatchError(f"decompressed body larger than {limit} bytes", status=413)
    if not inflater.eof:
        raise BatchError("body is not valid gzip: truncated stream")
    if inflater.unused_data:
        # Concatenated gzip members are legal but rare; refusing keeps the cap simple.
        raise BatchError("body is not valid gzip: data after the end of the stream")
    return out


@dataclass(slots=True)
class IngestResult:
    """What the producer is told about one batch."""

    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    spooled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
        }


class Ingestor:
    """Validates and keeps batches; shared by the HTTP, WebSocket and probe paths."""

    def __init__(
        self,
        writer: BatchWriter,
        metrics: CollectorMetrics,
        encrypt: EventTransform | None = None,
        window: ClockWindow | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.encrypt = encrypt
        self.window = window or ClockWindow()
        self.in_flight = in_flight or InFlight()

    async def ingest_body(
        self, body: bytes, fmt: BodyFormat, order: asyncio.Lock | None = None
    ) -> IngestResult:
        """Validate and keep a plain request body. Raises ``BatchError`` and ``SpoolFull``.

        With ``order``, validation runs at once but the write waits for the lock,
        so the batches of one WebSocket are written in the order they came in
        while the next one is already being validated.
        """
        with self.in_flight.tracking() as arrived:
            return await self._ingest_body(body, fmt, order, arrived)

    async def _ingest_body(
        self, body: bytes, fmt: BodyFormat, order: asyncio.Lock | None, arrived: float
    ) -> IngestResult:
        try:
            checked = validate_body(body, fmt)
        except UnicodeDecodeError as exc:  # msgspec raises it for a msgpack str of bad UTF-8
            raise BatchError(
                f"body is not valid {fmt}: a string is not UTF-8 ({exc.reason})"
            ) from None
        if fmt == "json" and may_hold_surrogates(body):
            refuse_lone_surrogates(checked)
        self._check_clock(checked)
        if checked.errors:
            self._count_rejected(body, fmt, checked.errors)
        faults.reach("ingest.validated")
        if order is None:
            return await self._checked(checked, arrived)
        async with order:
            return await self._checked(checked, arrived)

    async def ingest(self, items: Any) -> IngestResult:
        """Validate and keep an already decoded batch (a list of maps)."""
        with self.in_flight.tracking() as arrived:
            checked = validate_batch(items)
            refuse_lone_surrogates(checked)
            self._check_clock(checked)
            if checked.errors:
                self._count_rejected(items, None, checked.errors)
            return await self._checked(checked, arrived)

    def _check_clock(self, checked: BatchResult) -> None:
        for (source, direction), n in self.window.check(checked).items():
            self.metrics.clock_refused[(source, direction)] += n

    async def _checked(self, checked: BatchResult, arrived: float) -> IngestResult:
        result = IngestResult(rejected=checked.rejected)
        self.metrics.batch_sizes.observe(len(checked.events) + len(checked.errors))
        if checked.events:
            await self._keep(checked.events, result, arrived)
        return result

    async def ingest_events(self, events: Sequence[Event]) -> IngestResult:
        """Keep records built by the collector itself (probes, heartbeats): never clock-checked."""
        result = IngestResult()
        if events:
            with self.in_flight.tracking() as arrived:
                await self._keep(list(events), result, arrived)
        return result

    async def _keep(self, events: list[Event], result: IngestResult, arrived: float) -> None:
        if self.encrypt is not None:
            events = [self.encrypt(e) if e.type in SENSITIVE_FIELDS else e for e in events]
        kept = await self.writer.put(events, arrived)
        faults.reach("ingest.written")
        result.accepted = len(kept.events)
        result.spooled = kept.where == "spool"
        for source, n in kept.duplicates.items():
            self.metrics.duplicates[source] += n
            result.duplicates += n
        self.metrics.count_accepted(e.type for e in kept.events)

    def _count_rejected(self, data: Any, fmt: BodyFormat | None, errors: Sequence[Any]) -> None:
        # Rejections are rare: decoding the body a second time to label them by event
        # type costs nothing on the fast path.
        items = data
        if fmt is not None:
            try:
                items = decode_body(data, fmt)
            except BatchError:
                items = []
        for error in errors:
            raw = items[error.index] if error.index < len(items) else None
            etype = raw.get("type") if isinstance(raw, dict) else None
            self.metrics.count_rejected(error.field, etype if etype in EVENT_TYPES else "unknown")
