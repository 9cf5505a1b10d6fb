"""The handover report as Markdown, every time in the site's time zone (never UTC).

Sections follow the duty report the documents ask for (001: 当日问题汇总、未解决事项及改进建议;
2.4 工作交接规范): the shift's problems, unresolved items with owners, figures, silences
and flags in force, open runs with their step titles, notes and suggestions, sign-off.
Free text is PII-masked here, so every copy (screen, export, duty log files) is masked.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any

from watchfloor.core.vocabulary import SATISFACTION_FLOOR, SATISFACTION_TARGET
from watchfloor.security.pii import mask_text


def when(ts: float | None, zone: tzinfo) -> str:
    """``2026-12-06 14:05 CST``-like, in the site's zone."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M %Z")


def record_ts(value: Any) -> float | None:
    """Unix seconds of an audit record's time (Unix seconds or RFC 3339 text)."""
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f} %"


def _satisfaction(f: dict[str, Any]) -> str:
    """The shift's satisfied share (csat 4-5) with its ratings, marked when it missed
    the 95 % target or the 90 % floor (001 §1.1, §1.4)."""
    share, count = f.get("satisfaction"), f.get("csat_count") or 0
    if share is None or not count:
        return "-"
    mark = (
        " **below floor**"
        if share < SATISFACTION_FLOOR
        else " below target"
        if share < SATISFACTION_TARGET
        else ""
    )
    return f"{_pct(share)} of {count}{mark}"


def _cell(value: Any) -> str:
    return mask_text(str(value)).replace("|", "\\|").replace("\n", " ")


def render_markdown(
    report: dict[str, Any], zone: tzinfo, signed: dict[str, Any] | None = None
) -> str:
    lines = [
        f"# 值班交接 Shift handover — {when(report['since'], zone)} → {when(report['now'], zone)}",
        "",
        f"当日问题汇总 Problems: opened {len(report['opened'])} · resolved "
        f"{len(report['resolved'])} · still open {len(report['still_open'])} · "
        f"runs {len(report['runs'])}",
        "",
    ]
    lines += ["## 未解决事项 Unresolved items", "", *_unresolved_rows(report["unresolved"], zone)]
    lines += ["## Opened during the shift", "", *_incident_rows(report["opened"], zone)]
    lines += ["## Resolved during the shift", "", *_incident_rows(report["resolved"], zone)]
    lines += ["## 预案执行 Runs still open", "", *_run_lines(report["runs"])]
    lines += ["## 服务指标 Service figures (from counts)", "", *_figure_lines(report["figures"])]
    lines += ["## Queue load", "", *_queue_lines(report["queues"])]
    lines += ["## 静默与开关 Silences and flags in force", "", *_control_lines(report, zone)]
    lines += ["## Notable audit events", "", *_audit_lines(report["audit"], zone)]
    lines += ["## 改进建议 Improvement suggestions", "", _text_block(report["suggestions"]), ""]
    lines += ["## 备注 Notes", "", _text_block(report["notes"]), ""]
    lines += ["## 签收 Sign-off", "", _sign_line(report, signed, zone), ""]
    return "\n".join(lines).rstrip() + "\n"


def _text_block(value: str) -> str:
    return mask_text(value).strip() or "_none_"


def _sign_line(report: dict[str, Any], signed: dict[str, Any] | None, zone: tzinfo) -> str:
    outgoing = report.get("author") or "-"
    if signed is None:
        return f"Outgoing duty manager 交班: {outgoing} · incoming 接班: _not signed yet_"
    return (
        f"Outgoing duty manager 交班: {outgoing} · incoming 接班: **{signed['signed_by']}** "
        f"at {when(signed['signed_at'], zone)}"
    )


def _unresolved_rows(items: list[dict[str, Any]], zone: tzinfo) -> list[str]:
    if not items:
        return ["_none_", ""]
    rows = [
        "| id | severity | kind | title | state | opened | owner | next steps |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i in items:
        rows.append(
            f"| {i['id']} | {i['severity']} | {i['kind']} | {_cell(i['title'])} | {i['state']} | "
            f"{when(i['opened_at'], zone)} | {i['owner'] or 'unassigned'} | "
            f"{_cell('; '.join(i['next_steps']) or '-')} |"
        )
    return [*rows, ""]


def _incident_rows(items: list[dict[str, Any]], zone: tzinfo) -> list[str]:
    if not items:
        return ["_none_", ""]
    rows = [
        "| id | severity | kind | subject | title | state | opened |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i in items:
        rows.append(
            f"| {i['id']} | {i['severity']} | {i['kind']} | {_cell(i['subject'])} | "
            f"{_cell(i['title'])} | {i['state']} | {when(i['opened_at'], zone)} |"
        )
    return [*rows, ""]


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
        for title, owner, state in r["pending"]:
            out.append(f"  - [ ] {title} ({owner}, {state})")
    return [*out, ""]


def _figure_lines(figures: dict[str, Any]) -> list[str]:
    if not figures["queues"]:
        return ["_no contact counts in the shift's events_", ""]
    rows = [
        "| queue | channel | offered | answered | service level | abandon rate | "
        f"satisfaction (target {SATISFACTION_TARGET:.0%}, floor {SATISFACTION_FLOOR:.0%}) | "
        "resolution |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, f in [*figures["queues"].items(), ("**all**", figures["total"])]:
        rows.append(
            f"| {name} | {f['channel']} | {f['offered']} | {f['answered']} | "
            f"{_pct(f['service_level'])} | {_pct(f['abandon_rate'])} | "
            f"{_satisfaction(f)} | {_pct(f['resolution_rate'])} |"
        )
    if figures["partial"]:
        rows += ["", "_The events stream no longer reaches back to the shift's start._"]
    return [*rows, ""]


def _queue_lines(queues: dict[str, Any]) -> list[str]:
    if not queues["queues"]:
        return ["_no queue figures_", ""]
    rows = ["| queue | channel | peak waiting | longest wait |", "| --- | --- | ---: | ---: |"]
    for name, f in queues["queues"].items():
        rows.append(
            f"| {name} | {f['channel'] or '-'} | {f['peak_waiting']} | "
            f"{f['longest_wait_s']:.0f} s |"
        )
    return [*rows, ""]


def _control_lines(report: dict[str, Any], zone: tzinfo) -> list[str]:
    out = [
        f"- silence {s['id']} {s['matchers']} until {when(s['ends_at'], zone)} "
        f"by {s['created_by']}: {_cell(s['reason'])}"
        for s in report["silences"]
    ]
    out += [
        f"- flag `{f.get('name')}` = {f.get('value')} (set by {f.get('set_by')} at "
        f"{when(f.get('at'), zone)})"
        for f in report["flags"]
    ]
    return [*(out or ["_none_"]), ""]


def _audit_lines(records: list[dict[str, Any]] | None, zone: tzinfo) -> list[str]:
    if records is None:
        return ["_audit log not available_", ""]
    if not records:
        return ["_none_", ""]
    out = []
    for r in records:
        flag = "" if r.get("outcome", "ok") == "ok" else f" **{r['outcome']}**"
        at = when(record_ts(r.get("at")), zone)
        out.append(f"- {at} `{r['action']}` {r['target']} by {r['actor']} ({r['role']}){flag}")
    return [*out, ""]
