"""The shift handover report (值班交接, 001 §2.4-2.5): what the next duty manager must know.

:func:`collect` gathers, for the shift ``[since, now]``: incidents opened,
resolved and still open (each unresolved one with its owner); runs still open
with the titles of their open steps; the contact-centre figures of the shift
summed from counts (:mod:`playbooks.shift_figures`); the queue load read back
from the changes stream (peak waiting, longest wait); silences and flags still
in force; the notable audit events; and the outgoing duty manager's notes and
suggestions. :mod:`playbooks.handover_markdown` renders it in the site's time
zone; :mod:`playbooks.duty_log` keeps the signed reports.
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgpack
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.changes import decode_change
from watchfloor.core.vocabulary import OPEN_STEP_STATES as OPEN_STEP_WORDS
from watchfloor.playbooks.flags import get_flags
from watchfloor.playbooks.handover_markdown import record_ts
from watchfloor.playbooks.model import text
from watchfloor.playbooks.shift_figures import shift_figures

NOTABLE: Final = frozenset(
    {
        "incident.opened",
        "incident.create",
        "auth.failed",
        "signature.rejected",
        "token.create",
        "token.revoke",
        "keys.rotate",
        "flag.set",
        "silence.create",
        "run.abort",
        "run.step.escalate",
        "run.step.approve",
        "run.step.skip",
    }
)
OPEN_STEP_STATES: Final = frozenset(OPEN_STEP_WORDS)
CHANGES_PAGE: Final = 2000


async def collect(
    redis: aioredis.Redis,
    *,
    since: float,
    now: float,
    incidents: Any,
    runner: Any,
    audit: Any = None,
    silences: list[dict[str, Any]] | None = None,
    draft: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data.

    ``silences`` are the silences in force (the caller reads them: silences belong
    to the monitor); ``draft`` the outgoing duty manager's notes and suggestions.
    """
    every = [i.to_dict() for i in await incidents.list("all", limit=5000)]
    runs = [_run_summary(r, now) for r in await runner.list(None, limit=1000)]
    shift_runs = [r for r in runs if r["state"] == "active" or (r["finished_at"] or 0) >= since]
    still_open = [i for i in every if i["state"] != "resolved"]
    return {
        "since": since,
        "now": now,
        "opened": [i for i in every if i["opened_at"] >= since],
        "resolved": [i for i in every if (i.get("resolved_at") or 0) >= since],
        "still_open": still_open,
        "unresolved": [_unresolved(i, runs) for i in still_open],
        "runs": shift_runs,
        "figures": await shift_figures(redis, since, now),
        "queues": await queue_figures(redis, since, now),
        "silences": [s for s in silences or [] if s["ends_at"] > now],
        "flags": sorted((await get_flags(redis)).values(), key=lambda f: str(f.get("name"))),
        "audit": await notable_audit(audit, since, now) if audit is not None else None,
        "notes": (draft or {}).get("notes", ""),
        "suggestions": (draft or {}).get("suggestions", ""),
        "author": (draft or {}).get("author"),
    }


def _unresolved(incident: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """An incident still open and who owns it: who acknowledged it, else its run's open steps."""
    run = next((r for r in runs if r["id"] == incident.get("playbook_run")), None)
    owners = sorted({owner for _, owner, _ in run["pending"]}) if run else []
    return {
        "id": incident["id"],
        "severity": incident["severity"],
        "kind": incident["kind"],
        "title": incident["title"],
        "state": incident["state"],
        "opened_at": incident["opened_at"],
        "owner": incident.get("acknowledged_by") or (", ".join(owners) or None),
        "next_steps": [title for title, _, _ in run["pending"]] if run else [],
    }


def _run_summary(run: dict[str, Any], now: float) -> dict[str, Any]:
    open_steps = [s for s in run["steps"] if s["state"] in OPEN_STEP_STATES]
    late = [
        s
        for s in open_steps
        if s["late"] or (s.get("deadline") is not None and s["deadline"] < now)
    ]
    return {
        "id": run["id"],
        "playbook": run["playbook"],
        "title": run["title_zh"],
        "state": run["state"],
        "incident": run["incident"],
        "drill": run["drill"],
        "started_at": run["started_at"],
        "finished_at": run.get("finished_at"),
        # Step titles, not ids: the next duty manager reads them (2.4 工作交接规范).
        "pending": [(_step_title(s), s["owner"], s["state"]) for s in open_steps],
        "late": [_step_title(s) for s in late],
        "points": (run.get("score") or {}).get("points"),
    }


async def queue_figures(redis: aioredis.Redis, since: float, now: float) -> dict[str, Any]:
    """Per queue: peak waiting, longest wait, worst service level and abandon rate."""
    figures: dict[str, dict[str, Any]] = {}
    start, first_seen = f"{int(since * 1000)}-0", None
    end = f"{int(now * 1000)}-9999999"
    while entries := await _changes_page(redis, start, end, CHANGES_PAGE):
        for entry_id, fields in entries:
            change = decode_change(fields)
            if change.get("kind") == "queue":
                first_seen = first_seen or entry_id
                _fold(figures, change["data"])
        start = "(" + text(entries[-1][0])
    for raw in (await redis.hgetall(keys.QUEUES)).values():
        row = msgpack.unpackb(raw, raw=False)
        if row.get("queue") not in figures:
            _fold(figures, row)
    oldest = await _changes_page(redis, "-", "+", 1)
    partial = bool(oldest) and int(text(oldest[0][0]).split("-")[0]) > since * 1000
    return {"queues": dict(sorted(figures.items())), "partial": partial}


async def _changes_page(
    redis: aioredis.Redis, start: str, end: str, count: int
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Entries of the changes stream in ``[start, end]`` (the client returns bytes)."""
    reply = await redis.xrange(keys.CHANGES, min=start, max=end, count=count)
    return cast(list[tuple[bytes, dict[bytes, bytes]]], reply)


def _fold(figures: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    name = row.get("queue") or "?"
    f = figures.setdefault(
        name,
        {
            "channel": row.get("channel"),
            "peak_waiting": 0,
            "longest_wait_s": 0.0,
            "worst_service_level": None,
            "worst_abandon_rate": None,
            "last_abandon_rate": None,
            "snapshots": 0,
        },
    )
    f["snapshots"] += 1
    f["peak_waiting"] = max(f["peak_waiting"], row.get("waiting") or 0)
    f["longest_wait_s"] = max(f["longest_wait_s"], row.get("longest_wait_s") or 0.0)
    sl, ab = row.get("service_level"), row.get("abandon_rate")
    if sl is not None:
        worst = f["worst_service_level"]
        f["worst_service_level"] = sl if worst is None else min(worst, sl)
    if ab is not None:
        worst = f["worst_abandon_rate"]
        f["worst_abandon_rate"] = ab if worst is None else max(worst, ab)
        f["last_abandon_rate"] = ab


async def notable_audit(audit: Any, since: float, now: float, page: int = 500) -> list[dict]:
    """Audit records of the shift worth a line in the report."""
    found, after = [], 0
    while records := await audit.read(after=after, limit=page):
        for record in records:
            at = record_ts(record.get("at"))
            if at is None or not since <= at <= now:
                continue
            if record.get("action") in NOTABLE or record.get("outcome", "ok") != "ok":
                found.append(record)
        after = records[-1]["seq"]
        if len(records) < page:
            break
    return found


def _step_title(step: dict[str, Any]) -> str:
    return str(step.get("title_zh") or step.get("title") or step["id"])
