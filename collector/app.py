"""The collector's aiohttp application: ``POST /v1/events``, the stream, health, metrics.

:func:`create_app` wires one :class:`~collector.ingest.Ingestor` (validation,
dedup, encryption, Redis-or-spool writer) behind the shared auth gate of
``security.auth``. Background work (spool replay, probes, the collector's own
heartbeat) is owned by the app's ``cleanup_ctx``, so it starts and stops with
the app whether it runs under :class:`~collector.service.Collector` or a test's
``serve_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from redis.asyncio import Redis

from watchfloor.collector import alertmanager, openapi
from watchfloor.collector.appkeys import (
    AUDIT,
    CLOCK,
    CONFIG,
    INGESTOR,
    METRICS,
    SIGNATURES,
    STARTED,
    WRITER,
)
from watchfloor.collector.clock_report import ClockReporter, InFlight, collector_id
from watchfloor.collector.clock_window import ClockWindow
from watchfloor.collector.dedup import Deduplicator
from watchfloor.collector.errors import SpoolFull
from watchfloor.collector.http_errors import json_http_errors
from watchfloor.collector.ingest import BodyFormat, EventTransform, Ingestor, read_body
from watchfloor.collector.metrics import CollectorMetrics
from watchfloor.collector.probes import run_heartbeat, run_probes
from watchfloor.collector.spool import Spool
from watchfloor.collector.stream_trim import EventsTrimmer
from watchfloor.collector.tokens_cache import CachedTokens
from watchfloor.collector.writer import BatchWriter
from watchfloor.collector.ws import stream_handler
from watchfloor.core.config import Config
from watchfloor.core.events import MAX_BODY_BYTES, BatchError
from watchfloor.security.auth import (
    AuditSink,
    get_principal,
    json_error,
    public,
    requires,
    setup_auth,
)
from watchfloor.security.roles import Permission
from watchfloor.security.tokens import TokenStore, load_seal

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Watchfloor-Signature"


def create_app(
    config: Config,
    redis: Redis,
    *,
    audit: AuditSink | None = None,
    encrypt: EventTransform | bool | None = True,
    signatures: Callable[[str], list[str]] | bool | None = True,
    background: bool = True,
) -> web.Application:
    """The collector app on ``redis``.

    ``encrypt``: ``True`` loads ``security.crypto``'s cipher from the data dir,
    a callable is used as is, ``None``/``False`` stores sensitive fields in clear
    (tests of other concerns only). ``signatures``: likewise for the signing
    keys (``source name -> secrets``). ``background=False`` leaves out probes and
    the heartbeat (the spool replay always runs).
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[json_http_errors])
    metrics = CollectorMetrics()
    spool = Spool(config.path("spool"), config.collector.spool_max_bytes)
    dedup = Deduplicator(redis, config.collector.dedup_window_s, shards=config.redis.shards)
    writer = BatchWriter(dedup, spool, metrics)
    window = ClockWindow(config.collector.max_ahead_s, config.collector.max_behind_s)
    in_flight = InFlight()
    app[CONFIG] = config
    app[METRICS] = metrics
    app[WRITER] = writer
    app[INGESTOR] = Ingestor(writer, metrics, _encryptor(config, encrypt), window, in_flight)
    app[CLOCK] = ClockReporter(
        redis, writer, in_flight, _collector_id(config, app), max_ahead_s=window.max_ahead_s
    )
    app[SIGNATURES] = _signing_keys(config, signatures)
    app[AUDIT] = audit
    app[STARTED] = time.time()
    admin = config.security.admin_token.value if config.security.admin_token else None
    tokens = CachedTokens(TokenStore(redis, seal=load_seal(config.data_dir, create=False)))
    setup_auth(app, tokens, admin, audit,  # type: ignore[arg-type]
               fail_limit=config.security.auth_fail_limit)  # fmt: skip
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/v1/events/stream", stream_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_post(alertmanager.PATH, alertmanager.post_alertmanager)
    app.router.add_get(openapi.PATH, openapi.get_openapi)
    app.cleanup_ctx.append(_background(background))
    return app


def _trimmer(app: web.Application) -> EventsTrimmer:
    redis_config = app[CONFIG].redis
    return EventsTrimmer(
        app[WRITER].redis,
        shards=redis_config.shards,
        max_bytes=redis_config.events_max_bytes,
        retention_h=redis_config.events_retention_h,
        metrics=app[METRICS],
    )


def _collector_id(config: Config, app: web.Application) -> str:
    # Port 0 (tests, one-off runs) is not unique: tell apps of one process apart.
    port = config.collector.port
    return collector_id(port) if port else f"{collector_id(0)}-{id(app):x}"


def _encryptor(config: Config, encrypt: EventTransform | bool | None) -> EventTransform | None:
    if encrypt is True:
        from watchfloor.security.crypto import FieldCipher, encrypt_event

        cipher = FieldCipher.load(config.data_path, create=True)
        return lambda event: encrypt_event(event, cipher)
    return encrypt or None


def _signing_keys(
    config: Config, signatures: Callable[[str], list[str]] | bool | None
) -> Callable[[str], list[str]]:
    if signatures is True:
        return _SigningSecrets(config.data_path).secrets_for
    return signatures or (lambda _name: [])


class _SigningSecrets:
    """The producers' signing secrets, re-read when ``keys/signing`` changes.

    ``watchfloor keys add-secret`` then takes effect within ``check_every_s``
    without restarting the collector.
    """

    def __init__(self, data_dir: Path, check_every_s: float = 2.0) -> None:
        from watchfloor.security.signing import SigningKeys, signing_dir

        self._load = lambda: SigningKeys.load(data_dir)
        self._dir = signing_dir(data_dir)
        self._check_every_s = check_every_s
        self._keys = self._load()
        self._stamp = self._dir_stamp()
        self._checked = time.monotonic()

    def secrets_for(self, name: str) -> list[str]:
        now = time.monotonic()
        if now - self._checked > self._check_every_s:
            self._checked = now
            stamp = self._dir_stamp()
            if stamp != self._stamp:
                self._keys, self._stamp = self._load(), stamp
                logger.warning("signing secrets reloaded sources=%s", self._keys.sources())
        return self._keys.secrets_for(name)

    def _dir_stamp(self) -> tuple[int, ...]:
        try:
            return tuple(sorted(p.stat().st_mtime_ns for p in self._dir.glob("*.secrets")))
        except OSError:
            return ()


def _background(enabled: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        writer = app[WRITER]
        writer.spool.open()
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(writer.run(stop), name="spool-replay"),
            asyncio.create_task(app[CLOCK].run(stop), name="clock-report"),
        ]
        if enabled:
            config, ingestor = app[CONFIG], app[INGESTOR]
            tasks.append(asyncio.create_task(run_heartbeat(config, ingestor, stop)))
            tasks.append(asyncio.create_task(run_probes(config, ingestor, app[METRICS], stop)))
            tasks.append(asyncio.create_task(_trimmer(app).run(stop), name="stream-trim"))
        yield
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5.0)
        writer.spool.close()

    return ctx


# --- handlers -------------------------------------------------------------------------


@requires(Permission.SEND_EVENTS)
async def post_events(request: web.Request) -> web.Response:
    """Accept one batch: 202 with what was accepted, rejected and dropped as duplicate."""
    metrics = request.app[METRICS]
    try:
        plain, fmt = await _read_request(request)
        refusal = await check_signature(request, plain)
        if refusal is not None:
            return _refuse(metrics, 401, refusal)
        result = await request.app[INGESTOR].ingest_body(plain, fmt)
    except BatchError as exc:
        return _refuse(metrics, exc.status, exc.message)
    except SpoolFull as exc:
        return _refuse(metrics, 503, str(exc), {"Retry-After": str(exc.retry_after_s)})
    metrics.requests[("http", 202)] += 1
    return web.json_response(result.to_dict(), status=202)


async def _read_request(request: web.Request) -> tuple[bytes, BodyFormat]:
    """The body without its Content-Encoding, and its format (``BatchError`` if unusable)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BatchError(f"body larger than {MAX_BODY_BYTES} bytes", status=413) from None
    except RequestPayloadError as exc:  # e.g. a gzip body aiohttp itself could not inflate
        raise BatchError(f"body could not be read: {exc.args[0] if exc.args else exc}") from None
    headers = request.headers
    return read_body(body, headers.get("Content-Type", ""), headers.get("Content-Encoding", ""))


def _refuse(
    metrics: CollectorMetrics, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    metrics.requests[("http", status)] += 1
    return json_error(status, message, headers)


async def check_signature(request: web.Request, body: bytes) -> str | None:
    """Why the request's signature is refused, or ``None`` if it is fine (or not needed).

    The signature covers the body without its Content-Encoding (the JSON or msgpack
    bytes), so it holds whether or not the server or a proxy inflated a gzip body.
    """
    principal = get_principal(request)
    secrets = request.app[SIGNATURES](principal.name)
    header = request.headers.get(SIGNATURE_HEADER)
    required = bool(secrets) or request.app[CONFIG].collector.require_signature
    if not required and header is None:
        return None
    if not secrets:
        reason = f"no signing key for producer {principal.name!r}"
    elif header is None:
        reason = f"missing {SIGNATURE_HEADER} header"
    else:
        verdict = _verify(request.app[CONFIG], body, header, secrets)
        if verdict is None:
            return None
        reason = verdict
    await _audit_signature(request, principal.name, principal.role, reason)
    return f"signature rejected: {reason}"


def _verify(config: Config, body: bytes, header: str, secrets: list[str]) -> str | None:
    from watchfloor.security.signing import SignatureError, verify

    try:
        verify(body, header, secrets, tolerance_s=config.security.signature_tolerance_s)
    except SignatureError as exc:
        return str(exc) or "bad signature"
    return None


async def _audit_signature(request: web.Request, actor: str, role: str, reason: str) -> None:
    logger.warning("signature rejected producer=%s reason=%s", actor, reason)
    audit: Any = request.app[AUDIT]
    if audit is None:
        return
    try:
        await audit.append(
            actor=actor, role=role, action="signature.rejected", target=request.path,
            outcome="denied", details={"reason": reason, "remote": request.remote},
        )  # fmt: skip
    except Exception:  # the audit must not turn a 401 into a 500
        logger.exception("could not audit a rejected signature producer=%s", actor)


@public
async def healthz(request: web.Request) -> web.Response:
    writer = request.app[WRITER]
    body = {
        "status": "ok" if writer.redis_up else "degraded",
        "redis": "up" if writer.redis_up else "unreachable",
        "spool_batches": writer.spool.depth_batches,
        "spool_bytes": writer.spool.depth_bytes,
        "uptime_s": round(time.time() - request.app[STARTED], 3),
    }
    return web.json_response(body)


@public
async def metrics_handler(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].exposition(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})
