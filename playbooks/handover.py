"""The shift handover report (值班交接, 001 §2.4-2.5): what the next duty manager must know.

:func:`collect` gathers, for the shift ``[since, now]``: incidents opened,
resolved and still open; runs with pending or late steps; the queue figures of
the shift read back from the changes stream (peak waiting, longest wait, worst
service level, worst and last abandon rate per queue; the current board for a
queue that did not change); and the notable audit events (security events,
escalations, flags, tokens, anything whose outcome was not ``ok``).
:func:`render_markdown` turns that into the Markdown the ``handover`` command writes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final, cast

import msgpack
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.changes import decode_change
from watchfloor.core.vocabulary import OPEN_STEP_STATES as OPEN_STEP_WORDS
from watchfloor.playbooks.model import text

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


def _ts(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M UTC")


async def collect(
    redis: aioredis.Redis,
    *,
    since: float,
    now: float,
    incidents: Any,
    runner: Any,
    audit: Any = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data."""
    every = [i.to_dict() for i in await incidents.list("all", limit=5000)]
    runs = await runner.list(None, limit=1000)
    return {
        "since": since,
        "now": now,
        "opened": [i for i in every if i["opened_at"] >= since],
        "resolved": [i for i in every if (i.get("resolved_at") or 0) >= since],
        "still_open": [i for i in every if i["state"] != "resolved"],
        "runs": [
            _run_summary(r, now)
            for r in runs
            if r["state"] == "active" or (r.get("finished_at") or 0) >= since
        ],
        "queues": await queue_figures(redis, since, now),
        "audit": await notable_audit(audit, since, now) if audit is not None else None,
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
        "pending": [(s["id"], s["owner"], s["state"]) for s in open_steps],
        "late": [s["id"] for s in late],
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
            at = _ts(record.get("at"))
            if at is None or not since <= at <= now:
                continue
            if record.get("action") in NOTABLE or record.get("outcome", "ok") != "ok":
                found.append(record)
        after = records[-1]["seq"]
        if len(records) < page:
            break
    return found


# --- Markdown ---------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f} %"


def _incident_rows(items: list[dict[str, Any]]) -> list[str]:
    if not items:
        return ["_none_", ""]
    rows = [
        "| id | severity | kind | subject | title | state | opened | run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i in items:
        rows.append(
            f"| {i['id']} | {i['severity']} | {i['kind']} | {i['subject']} | "
            f"{_cell(i['title'])} | {i['state']} | {_when(i['opened_at'])} | "
            f"{i.get('playbook_run') or '-'} |"
        )
    return [*rows, ""]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# 值班交接 Shift handover — {_when(report['since'])} → {_when(report['now'])}",
        "",
        f"Opened {len(report['opened'])} · resolved {len(report['resolved'])} · "
        f"still open {len(report['still_open'])} · runs {len(report['runs'])}",
        "",
    ]
    lines += ["## Still open (交接给下一班)", "", *_incident_rows(report["still_open"])]
    lines += ["## Opened during the shift", "", *_incident_rows(report["opened"])]
    lines += ["## Resolved during the shift", "", *_incident_rows(report["resolved"])]
    lines += ["## Playbook runs", "", *_run_lines(report["runs"])]
    lines += ["## Queues during the shift", "", *_queue_lines(report["queues"])]
    lines += ["## Notable audit events", "", *_audit_lines(report["audit"])]
    return "\n".join(lines).rstrip() + "\n"


def _run_lines(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return ["_none_", ""]
    out = []
    for r in runs:
        tag = " (drill)" if r["drill"] else ""
        head = f"- **{r['id']}** {r['playbook']} {r['title']}{tag}: {r['state']}"
        if r["incident"]:
            head += f", incident {r['incident']}"
        if r["points"] is not None:
            head += f", score {r['points']}"
        out.append(head)
        if r["late"]:
            out.append(f"  - late: {', '.join(r['late'])}")
        for step, owner, state in r["pending"]:
            out.append(f"  - [ ] {step} ({owner}, {state})")
    return [*out, ""]


def _queue_lines(queues: dict[str, Any]) -> list[str]:
    if not queues["queues"]:
        return ["_no queue figures_", ""]
    rows = [
        "| queue | channel | peak waiting | longest wait | worst service level | "
        "worst abandon | last abandon |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, f in queues["queues"].items():
        rows.append(
            f"| {name} | {f['channel'] or '-'} | {f['peak_waiting']} | "
            f"{f['longest_wait_s']:.0f} s | {_pct(f['worst_service_level'])} | "
            f"{_pct(f['worst_abandon_rate'])} | {_pct(f['last_abandon_rate'])} |"
        )
    if queues["partial"]:
        rows += [
            "",
            "_The changes stream no longer reaches back to the start of the shift: "
            "figures cover only its later part._",
        ]
    return [*rows, ""]


def _audit_lines(records: list[dict[str, Any]] | None) -> list[str]:
    if records is None:
        return ["_audit log not available_", ""]
    if not records:
        return ["_none_", ""]
    out = []
    for r in records:
        flag = "" if r.get("outcome", "ok") == "ok" else f" **{r['outcome']}**"
        out.append(
            f"- {r.get('at')} `{r['action']}` {r['target']} by {r['actor']} ({r['role']}){flag}"
        )
    return [*out, ""]
