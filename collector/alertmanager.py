"""Alertmanager as a producer: its webhook (payload version 4) turned into ``health`` events.

``POST /v1/integrations/alertmanager`` takes what Prometheus Alertmanager's
``webhook_configs`` receiver sends, with a producer token (the receiver's
``http_config.authorization``), and turns each alert into one ``health`` event:
the component is the first of the configured labels the alert carries
(``collector.alertmanager_component_labels``: ``service``, then ``job``, then
``alertname``); a firing alert is ``down`` (``degraded`` when its severity label
is one of ``collector.alertmanager_degraded_severities``), a resolved one ``up``.
The event then takes the very path a ``POST /v1/events`` batch takes
(:meth:`~collector.ingest.Ingestor.ingest`: the event contract, the text checks,
the clock window, dedup, encryption, Redis or the spool).

Times: a firing alert is stamped with ``startsAt``, a resolved one with
``endsAt``, but never earlier than the monitor will still evaluate (the smaller
of ``collector.max_behind_s`` and ``monitor.late_horizon_s``, less a minute in
transit) nor later than now. Alertmanager re-sends an alert that fires for hours
with its old ``startsAt``: stamped as is, it would be refused by the clock window
or dropped by the engine as too late, although it says "down, still now".

The event id is the alert's fingerprint, status and start, so a re-sent
notification (``group_interval``, ``repeat_interval``, a retry) is dropped as a
duplicate within the dedup window, while the same alert firing again later (a
new ``startsAt``) is a new event. A bad alert is refused on its own, named as
``alerts[3].labels``; the valid alerts of the payload are kept and the answer is
a 400 (Alertmanager logs it and does not retry 4xx), so a broken rule is seen.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from watchfloor.collector.appkeys import CONFIG, INGESTOR, METRICS, SIGNATURES
from watchfloor.collector.errors import SpoolFull
from watchfloor.collector.ingest import read_body
from watchfloor.core.config import Config
from watchfloor.core.events import (
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    MAX_NAME_CHARS,
    BatchError,
    FieldError,
    decode_json_body,
    parse_ts,
)
from watchfloor.security.auth import get_principal, json_error, requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

PATH: Final = "/v1/integrations/alertmanager"
PAYLOAD_VERSION: Final = "4"
MAX_MESSAGE_CHARS: Final = 4096
"""The ``health`` event's limit; a longer summary is cut (an outage is not refused for it)."""
TRANSIT_S: Final = 60.0
"""Room left for the time an event spends between this stamp and the monitor."""
FINGERPRINT: Final = re.compile(r"[0-9A-Za-z]{1,64}")
SUMMARY_ANNOTATIONS: Final = ("summary", "description", "message")

# --- the payload (also the OpenAPI schema of the request body) ------------------------


class Alert(msgspec.Struct, kw_only=True):
    """One alert of an Alertmanager webhook notification."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: str
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str


class AlertmanagerPayload(msgspec.Struct, kw_only=True):
    """Alertmanager's webhook payload, version 4."""

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str | None = None
    alerts: list[Alert]


class AlertResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer: 202 when every alert was kept, 400 naming each refused one."""

    accepted: int
    rejected: list[dict[str, Any]]
    duplicates: int
    error: str | None = None


# --- mapping ---------------------------------------------------------------------------


class AlertError(Exception):
    """One alert cannot become an event; ``field`` names the alert's field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AlertMapping:
    """How alerts become ``health`` events (the ``collector.alertmanager_*`` settings)."""

    component_labels: tuple[str, ...] = ("service", "job", "alertname")
    severity_label: str = "severity"
    degraded_severities: tuple[str, ...] = ("warning", "info")
    source: str = "alertmanager"
    behind_s: float = 540.0
    """How far behind now a stamp may lie (older ones are brought forward to it)."""

    @classmethod
    def from_config(cls, config: Config) -> AlertMapping:
        c = config.collector
        reach = min(c.max_behind_s, config.monitor.late_horizon_s or c.max_behind_s)
        return cls(
            component_labels=c.alertmanager_component_labels,
            severity_label=c.alertmanager_severity_label,
            degraded_severities=c.alertmanager_degraded_severities,
            source=c.alertmanager_source,
            behind_s=max(0.0, reach - TRANSIT_S),
        )

    def event(self, raw: Any, now: float) -> dict[str, Any]:
        """The ``health`` event map of one decoded alert; :class:`AlertError` if unusable."""
        alert = _alert(raw)
        if not FINGERPRINT.fullmatch(alert.fingerprint):
            raise AlertError("fingerprint", "fingerprint must be 1 to 64 letters or digits")
        starts = _time(alert.startsAt, "startsAt")
        if alert.status == "firing":
            ts, status = starts, self._firing_status(alert.labels)
        else:
            ts, status = _time(alert.endsAt or "", "endsAt"), "up"
        return {
            "type": "health",
            "ts": min(max(ts, now - self.behind_s), now),
            "source": self.source,
            "id": f"am:{alert.fingerprint}:{alert.status}:{starts:.0f}",
            "component": self._component(alert.labels),
            "status": status,
            "message": _message(alert),
        }

    def _component(self, labels: dict[str, str]) -> str:
        for name in self.component_labels:
            value = labels.get(name)
            if value:
                if len(value) > MAX_NAME_CHARS:
                    raise AlertError(
                        "labels", f"label {name!r} is longer than {MAX_NAME_CHARS} characters"
                    )
                return value
        wanted = ", ".join(self.component_labels)
        raise AlertError("labels", f"labels name no component: none of {wanted} is set")

    def _firing_status(self, labels: dict[str, str]) -> str:
        severity = labels.get(self.severity_label, "").strip().casefold()
        degraded = {s.strip().casefold() for s in self.degraded_severities}
        return "degraded" if severity in degraded else "down"


_AT = re.compile(r"`\$\.(\w+)")
_MISSING = re.compile(r"missing required field `(\w+)`")


def _alert(raw: Any) -> Alert:
    if not isinstance(raw, dict):
        raise AlertError("", "an alert must be an object")
    try:
        return msgspec.convert(raw, Alert, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = _MISSING.search(text) or _AT.search(text)
        field = where.group(1) if where else ""
        reason = f"{field} is required" if _MISSING.search(text) else f"{field or 'alert'}: {text}"
        raise AlertError(field, reason) from None


def _time(text: str, field: str) -> float:
    try:
        return parse_ts(text)
    except ValueError as exc:
        raise AlertError(field, f"{field} {exc}") from None


def _message(alert: Alert) -> str:
    for name in SUMMARY_ANNOTATIONS:
        text = alert.annotations.get(name)
        if text:
            break
    else:
        text = alert.labels.get("alertname", "")
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


_EVENT_FIELDS: Final = {"component": "labels", "message": "annotations", "id": "fingerprint"}
"""Which alert field an event field came from (the contract names the event's)."""


def alerts_to_events(
    payload: Any, mapping: AlertMapping, now: float
) -> tuple[list[dict[str, Any]], list[int], list[FieldError]]:
    """(event maps, the alert index of each, errors of the alerts that made none)."""
    alerts = _alerts(payload)
    events, where, errors = [], [], []
    for index, raw in enumerate(alerts):
        try:
            events.append(mapping.event(raw, now))
        except AlertError as exc:
            errors.append(FieldError(index, _name(index, exc.field), exc.reason))
            continue
        where.append(index)
    return events, where, errors


def _alerts(payload: Any) -> list[Any]:
    if not isinstance(payload, dict):
        raise BatchError("the body must be an Alertmanager webhook payload (a JSON object)")
    version = payload.get("version")
    if version != PAYLOAD_VERSION:
        raise BatchError(f"version: payload version {PAYLOAD_VERSION!r} expected, got {version!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise BatchError("alerts: must be a list of alerts")
    truncated = payload.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        # max_alerts of the receiver cut the group: those alerts never reach us.
        logger.warning("alertmanager left out alerts truncated=%d group=%.200r", truncated,
                       payload.get("groupKey"))  # fmt: skip
    if len(alerts) > MAX_BATCH_EVENTS:
        raise BatchError(
            f"alerts: at most {MAX_BATCH_EVENTS} alerts, got {len(alerts)} (set max_alerts "
            "in the receiver's webhook_configs)",
            status=413,
        )
    return alerts


def _name(index: int, field: str) -> str:
    return f"alerts[{index}].{field}" if field else f"alerts[{index}]"


# --- the handler ----------------------------------------------------------------------


@requires(Permission.SEND_EVENTS)
async def post_alertmanager(request: web.Request) -> web.Response:
    """Accept one Alertmanager notification: 202, or 400 naming each refused alert."""
    metrics = request.app[METRICS]
    try:
        _check_unsigned(request)
        payload = decode_json_body(await _plain_json(request))
        events, where, errors = alerts_to_events(
            payload, AlertMapping.from_config(request.app[CONFIG]), time.time()
        )
        result = await request.app[INGESTOR].ingest(events)
    except BatchError as exc:
        metrics.requests[("http", exc.status)] += 1
        return json_error(exc.status, exc.message)
    except SpoolFull as exc:
        metrics.requests[("http", 503)] += 1
        return json_error(503, str(exc), {"Retry-After": str(exc.retry_after_s)})
    alerts = payload["alerts"]
    for refused in result.rejected:
        index = where[refused["index"]]
        field = _alert_field(refused["field"], alerts[index])
        errors.append(FieldError(index, _name(index, field), refused["error"]))
    errors.sort(key=lambda e: e.index)
    body = AlertResult(
        accepted=result.accepted,
        rejected=[e.to_dict() for e in errors],
        duplicates=result.duplicates,
        error=f"{len(errors)} of {len(alerts)} alerts refused" if errors else None,
    )
    status = 400 if errors else 202
    metrics.requests[("http", status)] += 1
    return web.json_response(msgspec.to_builtins(body), status=status)


def _alert_field(field: str, alert: dict[str, Any]) -> str:
    """The alert field an event field came from (the contract names the event's)."""
    if field == "ts":
        return "endsAt" if alert.get("status") == "resolved" else "startsAt"
    return _EVENT_FIELDS.get(field, "")


async def _plain_json(request: web.Request) -> bytes:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BatchError(f"body larger than {MAX_BODY_BYTES} bytes", status=413) from None
    except RequestPayloadError as exc:
        raise BatchError(f"body could not be read: {exc.args[0] if exc.args else exc}") from None
    headers = request.headers
    body, fmt = read_body(raw, headers.get("Content-Type", ""), headers.get("Content-Encoding", ""))
    if fmt != "json":
        raise BatchError("Alertmanager payloads are JSON: send application/json", status=415)
    return body


def _check_unsigned(request: web.Request) -> None:
    """Alertmanager cannot sign a webhook: refuse where signatures are required (401)."""
    name = get_principal(request).name
    if request.app[SIGNATURES](name) or request.app[CONFIG].collector.require_signature:
        raise BatchError(
            f"signature rejected: producer {name!r} must sign its batches, and Alertmanager "
            "cannot sign webhooks; give it a producer token of its own without signing keys",
            status=401,
        )
