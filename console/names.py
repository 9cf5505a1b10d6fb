"""Names the API sends as machine words, shown in the interface's language.

Channels (``phone``), the flags playbooks set (``auto_reply``), audit actions
(``incident.ack``) and their outcomes are ids on the wire; the console shows
them in Chinese under ``--lang zh`` and as they are in English (they are the
words operators grep the audit log for). An unknown word is shown as it came.
"""

from __future__ import annotations

from typing import Any, Final

from watchfloor.core import vocabulary

CHANNELS: Final[dict[str, str]] = dict(
    zip(vocabulary.CHANNELS, ("电话", "在线", "邮件", "社交媒体", "工单"), strict=True)
)
"""Channel names in Chinese, in the vocabulary's order (phone, chat, email, social, ticket)."""
FLAGS: Final[dict[str, str]] = {
    "auto_reply": "自动回复",
    "callback_offer": "回拨",
    "channel_notice": "渠道公告",
    "faq_bot": "常见问题机器人",
    "outage_notice": "故障公告",
    "overflow_queue": "溢出队列",
    "priority_routing": "优先路由",
    "service_notice": "服务公告",
}
FLAG_VALUES: Final[dict[str, str]] = {"on": "开", "off": "关", "True": "开", "False": "关"}
AUDIT_ACTIONS: Final[dict[str, str]] = {
    "incident.opened": "事件开启",
    "incident.create": "人工建事件",
    "incident.ack": "确认事件",
    "incident.resolve": "解决事件",
    "incident.note": "事件备注",
    "run.start": "启动预案",
    "run.abort": "中止预案",
    "run.completed": "预案完成",
    "run.resume": "预案恢复",
    "run.stand_down": "预案解除",
    "run.step.done": "步骤完成",
    "run.step.approve": "审批步骤",
    "run.step.skip": "跳过步骤",
    "run.step.escalate": "升级步骤",
    "run.step.late": "步骤超时",
    "run.step.action": "执行步骤动作",
    "run.step.retry": "重发步骤动作",
    "flag.set": "设置开关",
    "silence.create": "新建静默",
    "silence.expire": "解除静默",
    "token.create": "创建令牌",
    "token.revoke": "吊销令牌",
    "auth.failed": "认证失败",
    "auth.throttled": "认证限流",
    "signature.rejected": "签名被拒",
    "audit.repair": "审计修复",
    "audit.key": "审计密钥",
    "handover.notes": "交接记录",
    "handover.sign": "接班签收",
    "roster.import": "导入值班表",
    "roster.override": "值班调整",
}
ACTORS: Final[dict[str, str]] = {
    "engine": "监控引擎",
    "runner": "预案执行器",
    "system": "系统",
    "audit": "审计",
}
"""The product's own actors (people's names are shown as they are)."""
MATCHERS: Final[dict[str, str]] = {"rule": "规则", "subject": "对象", "kind": "类型"}
"""A silence's matcher names (their values are ids: rules, subjects)."""
OUTCOMES: Final[dict[str, str]] = {
    "ok": "成功",
    "denied": "拒绝",
    "conflict": "冲突",
    "error": "错误",
    "failed": "失败",
}
TABLES: Final[dict[str, dict[str, str]]] = {
    "channel": CHANNELS,
    "flag": FLAGS,
    "flag_value": FLAG_VALUES,
    "action": AUDIT_ACTIONS,
    "outcome": OUTCOMES,
    "actor": ACTORS,
    "matcher": MATCHERS,
}


def shown_name(table: str, word: Any, lang: str) -> str:
    """``word`` in ``lang``: the Chinese name when there is one, else the word itself."""
    text = "" if word is None else str(word)
    return TABLES[table].get(text, text) if lang == "zh" else text


def matchers_text(matchers: dict[str, Any], lang: str) -> str:
    """``rule=sla.queue · subject=热线``; in Chinese ``规则=sla.queue · 对象=热线``."""
    return " · ".join(f"{shown_name('matcher', k, lang)}={v}" for k, v in matchers.items())
