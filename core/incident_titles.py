"""Incident titles in Chinese, composed from the incident's machine-readable fields.

The engine writes an English title as data and keeps what it judged machine-readable
(``kind``, ``rule``, ``subject``, ``evidence`` with its ``conditions``). The edges that
speak Chinese (the console under ``--lang zh``, notifications when the site's language
is ``zh``) compose the title from those fields: ``热线 最长等待 1分3秒（阈值 15秒）``,
``售前咨询 进线激增：基线的 3.0 倍``. A rule this table does not know reads as the kind
and the subject (``数据泄露风险：u-17``), never as the English sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from watchfloor.core.durations import duration
from watchfloor.core.vocabulary import INCIDENT_KINDS, SEVERITIES

Phrase = Callable[[str, Mapping[str, Any]], str]

KIND_NAMES_ZH: Final = (
    "进线激增",
    "服务水平告警",
    "系统故障",
    "舆情",
    "数据泄露风险",
    "审计日志完整性",
    "人工事件",
)
KIND_ZH: Final[dict[str, str]] = dict(zip(INCIDENT_KINDS, KIND_NAMES_ZH, strict=True))
"""Kinds in Chinese, in the vocabulary's order (surge, sla, outage, opinion, leak, ...)."""
CONDITION_ZH: Final[dict[str, str]] = {
    "longest_wait": "最长等待",
    "no_agents": "无人值守",
    "service_level": "服务水平",
    "abandon_rate": "放弃率",
    "satisfaction": "满意率",
    "volume": "提及量",
    "negative_share": "负面占比",
    "high_reach": "高传播帖子",
    "down": "中断",
    "flapping": "时断时续",
    "degraded": "降级",
}


def _dur(value: Any) -> str:
    return duration(float(value or 0), "zh")


def _pct(value: Any) -> str:
    return f"{round(float(value or 0) * 100):d}%"


def _num(value: Any) -> str:
    return f"{float(value or 0):g}"


SLA: Final[dict[str, Phrase]] = {
    "longest_wait": lambda s, e: (
        f"{s} 最长等待 {_dur(e.get('longest_wait_s'))}（阈值 {_dur(e.get('threshold_s'))}）"
    ),
    "no_agents": lambda s, e: f"{s} 无人值守，{_num(e.get('waiting'))} 位客户在排队",
    "service_level": lambda s, e: (
        f"{s} 服务水平 {_pct(e.get('service_level'))}（目标 {_pct(e.get('target'))}）"
    ),
    "abandon_rate": lambda s, e: (
        f"{s} 放弃率 {_pct(e.get('abandon_rate'))}（上限 {_pct(e.get('limit'))}）"
    ),
    "satisfaction": lambda s, e: (
        f"{s} 满意率 {_pct(e.get('satisfied_share'))}（目标 {_pct(e.get('target'))}）"
    ),
}
OPINION: Final[dict[str, Phrase]] = {
    "volume": lambda s, e: f"舆情 {s}：提及量为预期的 {float(e.get('ratio') or 0):.1f} 倍",
    "negative_share": lambda s, e: f"舆情 {s}：负面占比 {_pct(e.get('share'))}",
    "high_reach": lambda s, e: f"舆情 {s}：高传播帖子",
}
OUTAGE: Final[dict[str, Phrase]] = {
    "down": lambda s, e: f"{s} 中断（连续 {_num(e.get('failed_probes'))} 次探测失败）",
    "flapping": lambda s, e: (
        f"{s} 时断时续：最近 {_num(e.get('probes'))} 次探测 {_num(e.get('failed'))} 次失败"
    ),
    "degraded": lambda s, e: f"{s} 降级",
}
RULES: Final[dict[str, Phrase]] = {
    "surge.offered": lambda s, e: f"{s} 进线激增：基线的 {float(e.get('ratio') or 0):.1f} 倍",
    "outage.heartbeat": lambda s, e: f"{s} 心跳丢失",
    "outage.silent_channel": lambda s, e: f"渠道 {s} 无进线（预期 {_num(e.get('expected'))}）",
    "outage.silent_queue": lambda s, e: f"队列 {s} 无进线（预期 {_num(e.get('expected'))}）",
    "leak.pii_in_message": lambda s, e: f"坐席 {s} 发送了客户数据（{_num(e.get('count'))} 处）",
    "leak.bulk_export": lambda s, e: f"{s} 批量导出 {_num(e.get('largest'))} 条记录",
    "leak.off_hours": lambda s, e: f"{s} 在非工作时间访问客户记录",
    "leak.unusual_access": lambda s, e: f"{s} 查看客户记录的数量异常",
    "engine.dead_letter": lambda s, e: f"一批事件无法处理（{s}）",
}
BY_CONDITION: Final[dict[str, dict[str, Phrase]]] = {
    "sla.queue": SLA,
    "opinion.topic": OPINION,
    "outage.component": OUTAGE,
}


def zh_title(incident: Mapping[str, Any]) -> str:
    """The Chinese title of an engine incident from its fields; empty when nothing fits."""
    rule, subject = str(incident.get("rule") or ""), str(incident.get("subject") or "")
    evidence: Mapping[str, Any] = incident.get("evidence") or {}
    if rule in RULES:
        return RULES[rule](subject, evidence)
    if rule.startswith("outage.") and rule[7:] in OUTAGE:
        return OUTAGE[rule[7:]](subject, evidence)
    table = BY_CONDITION.get(rule)
    conditions = [c for c in evidence.get("conditions") or [] if isinstance(c, Mapping)]
    if table is not None and conditions:
        severity = str(incident.get("severity"))
        return _conditions_title(table, subject, evidence, conditions, severity)
    kind = KIND_ZH.get(str(incident.get("kind") or ""))
    return f"{kind}：{subject}" if kind and subject else ""


def _conditions_title(
    table: Mapping[str, Phrase],
    subject: str,
    evidence: Mapping[str, Any],
    conditions: list[Mapping[str, Any]],
    severity: str,
) -> str:
    """The worst condition's phrase (its own figures first), the others named after it."""
    worst = next((c for c in conditions if c.get("severity") == severity), conditions[0])
    name = str(worst.get("condition") or evidence.get("state") or "")
    phrase = table.get(name)
    figures = {**evidence, **worst}
    head = phrase(subject, figures) if phrase else f"{subject} {CONDITION_ZH.get(name, name)}"
    others = [
        CONDITION_ZH.get(str(c.get("condition")), str(c.get("condition")))
        for c in conditions
        if c is not worst
    ]
    return f"{head}（另有：{'、'.join(others)}）" if others else head


SEVERITY_ZH: Final[dict[str, str]] = dict(
    zip(SEVERITIES, ("提示", "次要", "重要", "紧急"), strict=True)
)
"""Severities in Chinese, in the vocabulary's order (info, minor, major, critical)."""
