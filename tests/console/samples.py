"""Recorded live-feed messages (the shapes of the brief's shared data formats)."""

from __future__ import annotations

import time
from typing import Any


def queue_row(
    name: str,
    channel: str = "chat",
    waiting: int = 3,
    longest: float = 12.0,
    at: float | None = None,
    **more: Any,
) -> dict[str, Any]:
    row = {
        "queue": name,
        "channel": channel,
        "waiting": waiting,
        "longest_wait_s": longest,
        "agents_available": 4,
        "agents_busy": 9,
        "service_level": 0.82,
        "abandon_rate": 0.03,
        "asa_s": 11.0,
        "offered_5m": 120,
        "trend": [1, 2, 3, 5, 8, 5, 3, waiting],
        "sla_threshold_s": None,
        "updated_at": time.time() if at is None else at,
        "source": "acd-1",
    }
    row.update(more)
    return row


def incident(
    iid: str,
    severity: str = "major",
    state: str = "open",
    title: str = "Surge",
    subject: str = "售前咨询",
    **more: Any,
) -> dict[str, Any]:
    now = time.time()
    data = {
        "id": iid,
        "kind": "surge",
        "rule": "surge.default",
        "severity": severity,
        "state": state,
        "title": title,
        "subject": subject,
        "opened_at": now - 125,
        "updated_at": now,
        "resolved_at": None,
        "evidence": {"waiting": 85, "baseline": 12, "mobile": "138****5678"},
        "count": 3,
        "playbook_run": None,
    }
    data.update(more)
    return data


def run(rid: str, incident_id: str, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    now = time.time()
    return {
        "id": rid,
        "playbook": "contact-surge",
        "title": "Contact surge",
        "incident": incident_id,
        "state": "running",
        "drill": False,
        "started_at": now - 60,
        "started_by": "engine",
        "finished_at": None,
        "steps": steps
        or [
            {
                "id": "notify",
                "title": "Notify duty group",
                "owner": "duty_manager",
                "state": "done",
                "deadline": now - 30,
                "done_by": "ops",
            },
            {
                "id": "auto-reply",
                "title": "Switch on auto-reply",
                "owner": "oncall",
                "state": "ready",
                "deadline": now + 240,
                "done_by": None,
            },
            {
                "id": "extra-staff",
                "title": "Call in standby agents",
                "owner": "duty_manager",
                "state": "pending",
                "deadline": now - 5,
                "done_by": None,
            },
        ],
    }


def snapshot(queues: int = 3, seq: str = "1-0") -> dict[str, Any]:
    names = ["售前咨询", "after-sales", "phone-vip", "email-general", "退货退款"]
    channels = ["chat", "chat", "phone", "email", "chat"]
    rows = [
        queue_row(
            names[i % 5] + ("" if i < 5 else f"-{i}"),
            channels[i % 5],
            waiting=i * 3,
            longest=[12.0, 45.0, 20.0, 3600.0, 5.0][i % 5],
        )
        for i in range(queues)
    ]
    return {
        "type": "snapshot",
        "seq": seq,
        "reason": "initial",
        "incidents": [
            incident("INC-1", "critical", title="售前咨询 排队激增"),
            incident("INC-2", "minor", state="acknowledged", title="SLA breach"),
        ],
        "queues": rows,
        "health": [
            {
                "subject": "crm",
                "kind": "component",
                "status": "up",
                "updated_at": time.time(),
                "last_seen": time.time(),
            },
            {
                "subject": "order-api",
                "kind": "component",
                "status": "degraded",
                "updated_at": time.time(),
                "last_seen": time.time(),
            },
            {
                "subject": "acd-2",
                "kind": "heartbeat",
                "status": "lost",
                "updated_at": time.time(),
                "last_seen": time.time() - 90,
            },
        ],
        "runs": [run("RUN-1", "INC-1")],
        "flags": {"auto_reply": {"name": "auto_reply", "value": "on"}},
        "engine": {"watermark": time.time(), "lag_s": 0.2, "updated_at": time.time()},
    }
