"""Health probes (``[[probes]]``) and the collector's own heartbeat.

Each probe runs on its own timer: an HTTP GET (expected status, optional body
substring, timeout) or a TCP connect to ``host:port``. Every check becomes a
``health`` event for the probe's component (``up``, ``degraded`` when slower
than ``degraded_ms``, ``down`` with the reason in ``message``) and goes through
the same :class:`~collector.ingest.Ingestor` as producers' batches, so it is
spooled like them when Redis is away. The heartbeat says the collector itself
is alive (source ``collector.source``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from watchfloor.collector.errors import CollectorError
from watchfloor.collector.ingest import Ingestor
from watchfloor.collector.metrics import CollectorMetrics
from watchfloor.collector.writer import REDIS_DOWN
from watchfloor.core.config import Config, ProbeConfig
from watchfloor.core.events import Health, Heartbeat
from watchfloor.core.vocabulary import HealthStatus

logger = logging.getLogger(__name__)

BODY_LIMIT = 256 * 1024
Status = HealthStatus


async def check_http(probe: ProbeConfig, session: aiohttp.ClientSession, source: str) -> Health:
    """One HTTP check of ``probe``."""
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=probe.timeout_s)
    try:
        async with session.get(probe.target, timeout=timeout, allow_redirects=False) as resp:
            body = await resp.content.read(BODY_LIMIT) if probe.expect_body else b""
            status = resp.status
    except TimeoutError:
        return _down(probe, source, started, f"no answer within {probe.timeout_s:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return _down(probe, source, started, f"request failed: {_reason(exc)}")
    if status != probe.expect_status:
        return _down(probe, source, started, f"status {status}, expected {probe.expect_status}")
    if probe.expect_body and probe.expect_body.encode() not in body:
        return _down(probe, source, started, f"body lacks {probe.expect_body!r}")
    return _answered(probe, source, started, f"status {status}")


async def check_tcp(probe: ProbeConfig, source: str) -> Health:
    """One TCP connect check of ``probe`` (``target`` is ``host:port``)."""
    started = time.perf_counter()
    host, _, port = probe.target.rpartition(":")
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), probe.timeout_s
        )
    except TimeoutError:
        return _down(probe, source, started, f"no connection within {probe.timeout_s:g} s")
    except (OSError, ValueError) as exc:
        return _down(probe, source, started, f"connect failed: {_reason(exc)}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return _answered(probe, source, started, "connected")


def _answered(probe: ProbeConfig, source: str, started: float, message: str) -> Health:
    latency = (time.perf_counter() - started) * 1000.0
    slow = latency > probe.degraded_ms
    status: Status = "degraded" if slow else "up"
    if slow:
        message = f"{message}, slow: {latency:.0f} ms"
    return _health(probe, source, status, latency, message)


def _down(probe: ProbeConfig, source: str, started: float, message: str) -> Health:
    latency = (time.perf_counter() - started) * 1000.0
    return _health(probe, source, "down", latency, message)


def _health(
    probe: ProbeConfig, source: str, status: Status, latency: float, message: str
) -> Health:
    return Health(
        ts=time.time(),
        source=source,
        component=probe.name,
        status=status,
        latency_ms=round(min(latency, 3_600_000.0), 3),
        message=message[:4096],
    )


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def run_probes(
    config: Config, ingestor: Ingestor, metrics: CollectorMetrics, stop: asyncio.Event
) -> None:
    """Run every configured probe on its own interval until ``stop``."""
    if not config.probes:
        return
    source = config.collector.source
    probes = [p for p in config.probes if _usable(p)]
    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as group:
        for probe in probes:
            group.create_task(_probe_loop(probe, session, source, ingestor, metrics, stop))


def _usable(probe: ProbeConfig) -> bool:
    if probe.kind not in ("http", "tcp") or not probe.target:
        logger.error("probe ignored: kind must be http or tcp and target set probe=%s kind=%s",
                     probe.name, probe.kind)  # fmt: skip
        return False
    return True


async def _probe_loop(
    probe: ProbeConfig,
    session: aiohttp.ClientSession,
    source: str,
    ingestor: Ingestor,
    metrics: CollectorMetrics,
    stop: asyncio.Event,
) -> None:
    interval = max(0.05, probe.interval_s)
    while not stop.is_set():
        try:
            if probe.kind == "tcp":
                health = await check_tcp(probe, source)
            else:
                health = await check_http(probe, session, source)
            metrics.probe_runs[(probe.name, health.status)] += 1
            await ingestor.ingest_events([health])
        except (CollectorError, *REDIS_DOWN) as exc:
            logger.warning("probe result not kept probe=%s error=%s", probe.name, exc)
        except Exception:  # a task boundary: one broken probe must not stop the others
            logger.exception("probe failed probe=%s", probe.name)
        await _sleep(stop, interval)


async def run_heartbeat(config: Config, ingestor: Ingestor, stop: asyncio.Event) -> None:
    """Emit a ``heartbeat`` from ``collector.source`` every ``heartbeat_interval_s``."""
    interval = config.collector.heartbeat_interval_s
    if interval <= 0:
        return
    while not stop.is_set():
        try:
            beat = Heartbeat(ts=time.time(), source=config.collector.source)
            await ingestor.ingest_events([beat])
        except (CollectorError, *REDIS_DOWN) as exc:
            logger.warning("heartbeat not kept error=%s", exc)
        except Exception:  # a task boundary
            logger.exception("heartbeat failed")
        await _sleep(stop, interval)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
