"""Typed keys of the objects the collector app shares between its handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from watchfloor.collector.clock_report import ClockReporter
from watchfloor.collector.ingest import Ingestor
from watchfloor.collector.metrics import CollectorMetrics
from watchfloor.collector.writer import BatchWriter
from watchfloor.core.config import Config

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", CollectorMetrics)
INGESTOR = web.AppKey("ingestor", Ingestor)
WRITER = web.AppKey("writer", BatchWriter)
CLOCK = web.AppKey("clock", ClockReporter)
SIGNATURES: web.AppKey[Callable[[str], list[str]]] = web.AppKey("signatures")
"""Producer (token) name -> its signing secrets; empty when it need not sign."""
AUDIT: web.AppKey[Any] = web.AppKey("audit")
STARTED = web.AppKey("started", float)
