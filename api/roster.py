"""``GET /v1/roster``: who is on duty now (or ``?at=``), in the site's time zone.

Serves ``{"imported", "timezone", "at", "at_local", "on_duty": {role: [person]},
"shifts": [...], "overrides": [...]}``: the shifts and overrides in force at that
instant. Local times are formatted in ``[site] timezone`` (never UTC); ``at`` is
epoch seconds for machines. The console header reads it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from watchfloor.api.errors import BadRequest
from watchfloor.api.state import CONFIG, REDIS
from watchfloor.playbooks.roster import ROLES, Roster, active_shifts, on_duty
from watchfloor.playbooks.roster_file import parse_local_time
from watchfloor.playbooks.roster_store import load_roster
from watchfloor.security.auth import requires
from watchfloor.security.roles import Permission

routes = web.RouteTableDef()
LOCAL_FORMAT = "%Y-%m-%d %H:%M"


@routes.get("/v1/roster")
@requires(Permission.READ_BOARD)
async def get_roster(request: web.Request) -> web.Response:
    zone = request.app[CONFIG].site.zone
    at = _at(request.query.get("at"), zone)
    roster = await load_roster(request.app[REDIS])
    return web.json_response(roster_view(roster, at, zone))


def roster_view(roster: Roster | None, at: datetime, zone: ZoneInfo) -> dict[str, Any]:
    """The JSON of ``GET /v1/roster`` for ``roster`` (``None``: nothing imported yet)."""
    view: dict[str, Any] = {
        "imported": roster is not None,
        "timezone": zone.key,
        "at": at.timestamp(),
        "at_local": at.astimezone(zone).strftime(LOCAL_FORMAT),
        "on_duty": {role: [] for role in ROLES},
        "shifts": [],
        "overrides": [],
    }
    if roster is None:
        return view
    duty = on_duty(roster, at)
    view["on_duty"] = {
        role: [msgspec.to_builtins(p) for p in people] for role, people in duty.items()
    }
    view["shifts"] = [
        {"name": s.name, "start_local": _local(start, zone), "end_local": _local(end, zone)}
        for s, start, end in active_shifts(roster, at)
    ]
    now = at.timestamp()
    view["overrides"] = [
        {
            **msgspec.to_builtins(o),
            "start_local": _stamp(o.start, zone),
            "end_local": _stamp(o.end, zone),
        }
        for o in roster.overrides
        if o.start <= now < o.end
    ]
    return view


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime(LOCAL_FORMAT)


def _stamp(epoch: float, zone: ZoneInfo) -> str:
    return _local(datetime.fromtimestamp(epoch, zone), zone)


def _at(value: str | None, zone: ZoneInfo) -> datetime:
    """``?at=``: epoch seconds, or a local time in the site's zone (``2026-12-07 21:30``)."""
    if value is None or value == "":
        return datetime.fromtimestamp(time.time(), zone)
    try:
        return datetime.fromtimestamp(float(value), zone)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        return parse_local_time(value, zone)
    except ValueError:
        raise BadRequest(
            f"at: not epoch seconds nor a local time like '2026-12-07 21:30': {value!r}"
        ) from None
