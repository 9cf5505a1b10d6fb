"""Post-incident review (复盘): one incident's report, and MTTA / MTTR per kind and severity.

:func:`incident_review` renders, for one incident, Markdown with its facts,
time to acknowledge (acknowledged − opened) and to resolve (resolved − opened),
the timeline, the evidence (PII-masked again: free text may have come from
anywhere), the run with who did each step and when, and the notes.
:func:`mean_times` folds incidents opened in a period (a shift, a week) into
MTTA and MTTR by kind and by severity, and :func:`render_mean_times` prints them.
Every time is shown in the site's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import tzinfo
from typing import Any

from watchfloor.playbooks.handover_markdown import when
from watchfloor.security.pii import mask_text


def duration(seconds: float | None) -> str:
    """``6m36s`` / ``2h05m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def time_to_ack(incident: dict[str, Any]) -> float | None:
    at = incident.get("acknowledged_at")
    return None if at is None else at - incident["opened_at"]


def time_to_resolve(incident: dict[str, Any]) -> float | None:
    at = incident.get("resolved_at")
    return None if at is None else at - incident["opened_at"]


def incident_review(
    incident: dict[str, Any],
    timeline: list[dict[str, Any]],
    run: dict[str, Any] | None,
    zone: tzinfo,
) -> str:
    i = incident
    lines = [
        f"# 复盘 Post-incident review — {i['id']}: {mask_text(i['title'])}",
        "",
        f"- kind {i['kind']} · severity {i['severity']} · subject {mask_text(i['subject'])} · "
        f"rule {i['rule']} · state {i['state']}",
        f"- opened {when(i['opened_at'], zone)} · acknowledged "
        f"{when(i.get('acknowledged_at'), zone)} by {i.get('acknowledged_by') or '-'} · resolved "
        f"{when(i.get('resolved_at'), zone)} by {i.get('resolved_by') or '-'}",
        f"- **time to acknowledge {duration(time_to_ack(i))} · time to resolve "
        f"{duration(time_to_resolve(i))}**",
        "",
        "## Timeline",
        "",
        *_timeline_lines(timeline, zone),
        "## Evidence (masked)",
        "",
        *[f"- {k}: {mask_text(str(v))}" for k, v in sorted(i.get("evidence", {}).items())],
        "",
        "## Playbook run",
        "",
        *_run_lines(run, zone),
        "## Notes",
        "",
        *([f"- {mask_text(e['note'])}" for e in timeline if e.get("note")] or ["_none_"]),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _timeline_lines(timeline: list[dict[str, Any]], zone: tzinfo) -> list[str]:
    out = [
        f"- {when(e.get('at'), zone)} {e.get('event', '?')} by {e.get('actor', '-')}"
        + (f": {mask_text(e['note'])}" if e.get("note") else "")
        for e in timeline
    ]
    return [*(out or ["_none_"]), ""]


def _run_lines(run: dict[str, Any] | None, zone: tzinfo) -> list[str]:
    if run is None:
        return ["_no playbook run_", ""]
    out = [
        f"{run['id']} {run['playbook']} {run['title_zh']}: {run['state']}, started "
        f"{when(run['started_at'], zone)} by {run['started_by']}",
        "",
        "| step | owner | state | done by | at | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in run["steps"]:
        note = mask_text(s.get("note") or "").replace("|", "\\|").replace("\n", " ")
        out.append(
            f"| {s['title_zh']} | {s['owner']} | {s['state']} | {s.get('done_by') or '-'} | "
            f"{when(s.get('done_at'), zone)} | {note or '-'} |"
        )
    return [*out, ""]


def mean_times(incidents: list[dict[str, Any]], since: float, until: float) -> dict[str, Any]:
    """MTTA / MTTR (seconds) by kind and by severity of the incidents opened in the period."""
    chosen = [i for i in incidents if since <= i["opened_at"] < until]
    return {
        "since": since,
        "until": until,
        "count": len(chosen),
        "by_kind": _fold(chosen, "kind"),
        "by_severity": _fold(chosen, "severity"),
        "all": _fold(chosen, None).get("all", _empty()),
    }


def _empty() -> dict[str, Any]:
    return {"count": 0, "acknowledged": 0, "resolved": 0, "mtta_s": None, "mttr_s": None}


def _fold(incidents: list[dict[str, Any]], field: str | None) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in incidents:
        groups[i[field] if field else "all"].append(i)
    out = {}
    for name, items in sorted(groups.items()):
        acks = [t for i in items if (t := time_to_ack(i)) is not None]
        fixes = [t for i in items if (t := time_to_resolve(i)) is not None]
        out[name] = {
            "count": len(items),
            "acknowledged": len(acks),
            "resolved": len(fixes),
            "mtta_s": sum(acks) / len(acks) if acks else None,
            "mttr_s": sum(fixes) / len(fixes) if fixes else None,
        }
    return out


def render_mean_times(figures: dict[str, Any], zone: tzinfo) -> str:
    lines = [
        f"# MTTA / MTTR — {when(figures['since'], zone)} → {when(figures['until'], zone)}",
        "",
        f"{figures['count']} incidents opened · MTTA {duration(figures['all']['mtta_s'])} · "
        f"MTTR {duration(figures['all']['mttr_s'])}",
        "",
    ]
    for title, key in (("By kind", "by_kind"), ("By severity", "by_severity")):
        lines += [f"## {title}", "", "| | incidents | acknowledged | resolved | MTTA | MTTR |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for name, f in figures[key].items():
            lines.append(
                f"| {name} | {f['count']} | {f['acknowledged']} | {f['resolved']} | "
                f"{duration(f['mtta_s'])} | {duration(f['mttr_s'])} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
