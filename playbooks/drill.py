"""Scores of finished runs, drills (演练) above all: how fast and how well the team worked.

The score of a run: time to acknowledge (from the start to the first thing a
person did on the run), for every step the time it took against its deadline,
the late steps, the escalations, the skipped steps; then points out of 100
(late steps cost 15, escalations 5, skipped steps 5, an acknowledgement slower
than :data:`ACK_TARGET_S` 10) and a grade. Finished drills are kept in
``wf:runs:drills`` and listed with :func:`list_drills`.
"""

from __future__ import annotations

from typing import Any, Final

import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.playbooks.model import Run, RunStep, decode_run, text

ACK_TARGET_S: Final = 300.0
"""Acknowledge within 5 minutes (001 §1.4: complex questions within 5 min)."""
GRADES: Final = ((90, "A"), (75, "B"), (60, "C"), (0, "D"))


def _step_score(step: RunStep) -> dict[str, Any]:
    ready, done, deadline = step.ready_at, step.done_at, step.deadline
    took = round(done - ready, 3) if ready is not None and done is not None else None
    over = None
    if deadline is not None and done is not None:
        over = round(max(0.0, done - deadline), 3)
    return {
        "id": step.id,
        "state": step.state,
        "took_s": took,
        "deadline_s": step.deadline_s,
        "over_s": over,
        "late": step.late,
        "escalations": step.escalations,
    }


def score_run(run: Run) -> dict[str, Any]:
    """The score of a finished (or, for a preview, running) run."""
    started = run.started_at
    steps = [_step_score(s) for s in run.steps]
    late = sum(1 for s in steps if s["late"])
    escalations = sum(s["escalations"] for s in steps)
    skipped = sum(1 for s in steps if s["state"] == "skipped")
    ack = run.first_ack_at
    tta = round(ack - started, 3) if ack is not None else None
    points = 100 - 15 * late - 5 * escalations - 5 * skipped
    if tta is None or tta > ACK_TARGET_S:
        points -= 10
    points = max(0, min(100, points))
    finished = run.finished_at
    return {
        "time_to_ack_s": tta,
        "total_s": round(finished - started, 3) if finished is not None else None,
        "late_steps": late,
        "escalations": escalations,
        "skipped_steps": skipped,
        "steps": steps,
        "points": points,
        "grade": next(g for floor, g in GRADES if points >= floor),
    }


async def list_drills(redis: aioredis.Redis, limit: int = 50) -> list[dict[str, Any]]:
    """Finished drills, newest first: run id, playbook, when, and the score."""
    ids = await redis.zrevrange(keys.RUN_DRILLS, 0, max(limit - 1, 0))
    if not ids:
        return []
    raws = await redis.mget([keys.run(text(i)) for i in ids])
    out = []
    for raw in raws:
        if raw is None:
            continue
        run = decode_run(raw)
        out.append(
            {
                "run": run.id,
                "playbook": run.playbook,
                "title": run.title,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "state": run.state,
                "score": run.score or None,
            }
        )
    return out


def format_drills(drills: list[dict[str, Any]]) -> str:
    """A plain-text table of drill scores for the terminal."""
    lines = [
        f"{'RUN':<22} {'PLAYBOOK':<16} {'POINTS':>6} {'GRADE':<5} {'ACK':>8} {'LATE':>4} {'ESC':>3}"
    ]
    for d in drills:
        score = d.get("score") or {}
        tta = score.get("time_to_ack_s")
        lines.append(
            f"{d['run']:<22} {d['playbook']:<16} {score.get('points', '-'):>6} "
            f"{score.get('grade', '-'):<5} {('-' if tta is None else f'{tta:.0f}s'):>8} "
            f"{score.get('late_steps', '-'):>4} {score.get('escalations', '-'):>3}"
        )
    return "\n".join(lines)
