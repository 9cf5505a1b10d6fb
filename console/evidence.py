"""An incident's evidence as labelled human text (``最长等待  1分23秒``, ``服务水平  32%``).

The engine keeps its evidence machine-readable (seconds, ratios, Unix times,
nested dicts); the console renders it at the edge in the interface's language.
A key has a label in each language and a kind of value (duration, share, time,
count); nested values become ``label value`` pairs on one line, never a raw dict.
A key the table does not know keeps its own name with its value rendered by its
suffix (``_s`` a duration, ``_at`` a time), so new evidence still reads sanely.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

from watchfloor.console import format as fmt
from watchfloor.console.names import shown_name
from watchfloor.core.vocabulary import SEVERITIES

LABELS: Final[dict[str, tuple[str, str]]] = {
    "queue": ("queue", "队列"),
    "channel": ("channel", "渠道"),
    "waiting": ("waiting", "排队人数"),
    "longest_wait_s": ("longest wait", "最长等待"),
    "threshold_s": ("threshold", "阈值"),
    "service_level": ("service level", "服务水平"),
    "target": ("target", "目标"),
    "answered": ("answered", "已接听"),
    "abandon_rate": ("abandon rate", "放弃率"),
    "abandoned": ("abandoned", "放弃"),
    "offered": ("offered", "进线"),
    "limit": ("limit", "上限"),
    "expected": ("expected", "预期"),
    "ratio": ("ratio", "倍数"),
    "window_s": ("window", "统计窗口"),
    "baseline": ("baseline", "基线"),
    "baseline_now": ("baseline now", "当前基线"),
    "baseline_per_min": ("baseline per minute", "每分钟基线"),
    "cusum": ("sequential test (CUSUM)", "累积和检验值"),
    "cusum_threshold": ("its threshold", "检验阈值"),
    "last_week_same_hour": ("same hour last week", "上周同时段"),
    "source": ("source", "来源"),
    "agents_available": ("agents available", "空闲坐席"),
    "agents_busy": ("agents busy", "忙碌坐席"),
    "satisfied_share": ("satisfied", "满意率"),
    "satisfaction": ("satisfaction", "满意度"),
    "ratings": ("ratings", "评价数"),
    "forecast": ("forecast", "预测"),
    "conditions": ("conditions", "触发条件"),
    "mentions": ("mentions", "提及次数"),
    "p_value": ("p-value", "显著性"),
    "topic": ("topic", "舆情话题"),
    "agent_id": ("agent", "坐席"),
    "actor": ("actor", "操作人"),
    "count": ("count", "次数"),
    "kinds": ("kinds", "类型"),
    "records": ("records", "记录数"),
    "largest": ("largest", "最大一次"),
    "off_hours": ("off hours", "非工作时间"),
    "working_hours": ("working hours", "工作时间"),
    "component": ("component", "组件"),
    "status": ("status", "状态"),
    "reason": ("reason", "原因"),
    "deliveries": ("deliveries", "投递次数"),
    "entry": ("entry", "条目"),
    "reopened_from": ("reopened from", "重新打开自"),
    "mobile": ("mobile", "手机号"),
    "severity": ("severity", "级别"),
    "title": ("title", "标题"),
    "kind": ("kind", "类型"),
    "rule": ("rule", "规则"),
    "subject": ("subject", "对象"),
    "state": ("state", "状态"),
    "value": ("value", "值"),
}
WORDS_ZH: Final[dict[str, dict[str, str]]] = {
    "source": {"contact": "联系记录", "queue.stats": "队列统计"},
    "severity": dict(zip(SEVERITIES, ("提示", "次要", "重要", "紧急"), strict=True)),
    "state": {"open": "未处理", "acknowledged": "已确认", "resolved": "已解决",
              "down": "中断", "degraded": "降级", "flapping": "时断时续", "up": "正常"},
}  # fmt: skip
"""Machine words some keys carry as values, in Chinese."""
SHARES: Final = {"service_level", "abandon_rate", "satisfied_share", "target", "limit"}
"""Keys whose value is a ratio (0..1) shown as a percentage."""
YES_NO: Final = {"en": ("yes", "no"), "zh": ("是", "否")}


def label(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    return key if pair is None else pair[1 if lang == "zh" else 0]


def value_text(key: str, value: Any, lang: str) -> str:
    """One value, human: durations, percentages, local times; nested values flattened."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return YES_NO.get(lang, YES_NO["en"])[0 if value else 1]
    if isinstance(value, dict):
        return (
            "，".join(pairs(value.items(), lang))
            if lang == "zh"
            else ", ".join(pairs(value.items(), lang))
        )
    if isinstance(value, list | tuple):
        return ("、" if lang == "zh" else ", ").join(value_text(key, v, lang) for v in value[:10])
    if isinstance(value, int | float):
        return _number(key, float(value), lang)
    if key == "channel":
        return shown_name("channel", value, lang)
    if lang == "zh" and key in WORDS_ZH:
        return WORDS_ZH[key].get(str(value), str(value))
    return str(value)


def _number(key: str, number: float, lang: str) -> str:
    if key.endswith("_s"):
        return fmt.duration(number, lang)
    if key in SHARES and 0.0 <= number <= 1.0:
        return fmt.percent(number)
    if key in ("at", "ts") or key.endswith("_at"):
        return time.strftime("%m-%d %H:%M:%S", time.localtime(number))
    if key == "p_value":
        return f"{number:.2g}"
    return f"{number:g}"


def pairs(items: Iterable[tuple[str, Any]], lang: str) -> list[str]:
    return [f"{label(str(k), lang)} {value_text(str(k), v, lang)}" for k, v in items]


def evidence_lines(evidence: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """``(label, value)`` per evidence key, in the engine's order."""
    return [(label(str(k), lang), value_text(str(k), v, lang)) for k, v in evidence.items()]
