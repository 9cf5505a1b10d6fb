"""English and Chinese strings of the console (``--lang en|zh``).

One table, keyed by a short English id; :class:`Translator` looks a key up in
the chosen language and falls back to English, then to the key's last part
(``step.paused`` -> ``paused``), so a value the API adds later still shows
as readable English rather than an error.
"""

from __future__ import annotations

from typing import Final

LANGS: Final = ("en", "zh")

STRINGS: Final[dict[str, tuple[str, str]]] = {
    # titles and tiles
    "app.title": ("Watchfloor", "值班台 Watchfloor"),
    "tile.queues": ("Queues", "队列"),
    "tile.health": ("Health", "系统健康"),
    "tile.incidents": ("Open incidents", "未关闭事件"),
    "tile.runs": ("Active playbooks", "进行中的预案"),
    "tile.age": ("{age} ago", "{age}前"),
    "tile.no_data": ("no data", "无数据"),
    "tile.stale": ("STALE", "数据过期"),
    # queue columns
    "col.queue": ("Queue", "队列"),
    "col.channel": ("Channel", "渠道"),
    "col.waiting": ("Waiting", "排队"),
    "col.longest": ("Longest", "最长等待"),
    "col.sl": ("SL", "服务水平"),
    "col.abandon": ("Aband.", "放弃率"),
    "col.agents": ("Avail/Busy", "空闲/忙碌"),
    "col.trend": ("Trend", "趋势"),
    # incident columns
    "col.severity": ("Sev", "级别"),
    "col.title": ("Title", "标题"),
    "col.age": ("Age", "时长"),
    "col.state": ("State", "状态"),
    "col.count": ("#", "次数"),
    "col.playbook": ("Playbook", "预案"),
    "col.incident": ("Incident", "事件"),
    "col.progress": ("Progress", "进度"),
    "col.overdue": ("Late", "超时"),
    "col.step": ("Step", "步骤"),
    "col.owner": ("Owner", "负责人"),
    "col.deadline": ("Deadline", "截止"),
    "col.by": ("By", "执行人"),
    "col.seq": ("Seq", "序号"),
    "col.at": ("At", "时间"),
    "col.actor": ("Actor", "操作人"),
    "col.role": ("Role", "角色"),
    "col.action": ("Action", "操作"),
    "col.target": ("Target", "对象"),
    "col.outcome": ("Outcome", "结果"),
    # health strip
    "health.up": ("up", "正常"),
    "health.degraded": ("degraded", "降级"),
    "health.down": ("down", "中断"),
    "health.lost": ("lost heartbeats", "心跳丢失"),
    "health.engine_lag": ("engine lag", "引擎延迟"),
    "health.unplaced": ("unplaced events", "无法归位的事件"),
    "health.flags": ("flags", "开关"),
    # states and severities
    "state.open": ("open", "未处理"),
    "state.acknowledged": ("acked", "已确认"),
    "state.resolved": ("resolved", "已解决"),
    "sev.critical": ("CRIT", "紧急"),
    "sev.major": ("MAJOR", "重要"),
    "sev.minor": ("minor", "次要"),
    "sev.info": ("info", "提示"),
    "step.pending": ("pending", "待办"),
    "step.ready": ("ready", "可执行"),
    "step.waiting": ("waiting", "等待中"),
    "step.running": ("running", "进行中"),
    "step.done": ("done", "完成"),
    "step.skipped": ("skipped", "跳过"),
    "step.overdue": ("overdue", "超时"),
    "step.late": ("late", "已超时"),
    "step.escalated": ("escalated", "已升级"),
    "step.failed": ("failed", "失败"),
    "step.awaiting_approval": ("needs approval", "待审批"),
    "run.drill": ("drill", "演练"),
    "run.active": ("active", "进行中"),
    "run.completed": ("completed", "已完成"),
    "run.aborted": ("aborted", "已中止"),
    "run.failed": ("failed", "失败"),
    "role.viewer": ("viewer", "观察员"),
    "role.oncall": ("on-call", "值班员"),
    "role.duty_manager": ("duty manager", "值班经理"),
    "role.security_officer": ("security officer", "安全官"),
    "role.admin": ("admin", "管理员"),
    # connection
    "conn.connected": ("live", "已连接"),
    "conn.connecting": ("connecting…", "连接中…"),
    "conn.disconnected": ("disconnected, retry in {s}s", "连接断开，{s}秒后重试"),
    "conn.refused": ("refused: {reason}", "被拒绝：{reason}"),
    # incident screen
    "incident.heading": ("Incident", "事件"),
    "incident.evidence": ("Evidence (masked)", "证据（已脱敏）"),
    "incident.timeline": ("Timeline", "时间线"),
    "incident.run": ("Playbook run", "预案执行"),
    "incident.no_run": ("No playbook run. Press p to start one.", "尚无预案执行。按 p 启动。"),
    "incident.no_run_ro": ("No playbook run.", "尚无预案执行。"),
    "incident.subject": ("Subject", "对象"),
    "incident.opened": ("Opened", "开始"),
    "incident.unknown": ("Unknown incident {id}", "未知事件 {id}"),
    # audit screen
    "audit.heading": ("Audit log", "审计日志"),
    "audit.filter": ("filter: actor, action or target", "筛选：操作人、操作或对象"),
    "audit.verified": (
        "verified up to record {n}; last signed checkpoint {cp}",
        "已验证至第 {n} 条记录；最近签名检查点 {cp}",
    ),
    "audit.broken": (
        "VERIFICATION FAILED at record {n}: {reason}",
        "验证失败，第 {n} 条记录：{reason}",
    ),
    "audit.verify_missing": ("verification not offered by this API", "此 API 不提供验证"),
    "audit.halted": (
        "AUDIT HALTED ({name}): {reason}. Nothing is signed until a security officer runs "
        "'watchfloor audit repair'.",
        "审计已停止（{name}）：{reason}。在安全员执行 'watchfloor audit repair' 之前不再签名。",
    ),
    "audit.problem": ("AUDIT PROBLEM ({name}): {reason}", "审计问题（{name}）：{reason}"),
    "audit.verify_pending": ("verifying…", "验证中…"),
    # modals and actions
    "modal.note": ("Note", "备注"),
    "modal.note_for_resolve": ("Resolution note", "解决说明"),
    "modal.playbook": ("Playbook id (e.g. contact-surge)", "预案编号（如 contact-surge）"),
    "modal.drill": ("Drill (演练)", "演练"),
    "modal.ok": ("OK", "确定"),
    "modal.cancel": ("Cancel", "取消"),
    "modal.confirm": ("Confirm", "确认"),
    "done.ack": ("Acknowledged {id}", "已确认 {id}"),
    "done.resolve": ("Resolved {id}", "已解决 {id}"),
    "done.note": ("Note added to {id}", "已为 {id} 添加备注"),
    "done.step": ("Step {step} marked done", "步骤 {step} 已完成"),
    "done.escalate": ("Step {step} escalated", "步骤 {step} 已升级"),
    "done.approve": ("Step {step} approved", "步骤 {step} 已审批"),
    "done.start": ("Playbook {pb} started", "预案 {pb} 已启动"),
    "done.skip": ("Step {step} skipped", "步骤 {step} 已跳过"),
    "done.abort": ("Run aborted", "预案执行已中止"),
    "done.open": ("Incident {new} opened", "已创建事件 {new}"),
    "done.silence": ("Silenced for {minutes} min", "已静默 {minutes} 分钟"),
    "modal.pick_playbook": (
        "Start which playbook? (those for this kind of incident first)",
        "启动哪个预案？（适用于此类事件的排在前面）",
    ),
    "modal.steps": ("steps", "个步骤"),
    "modal.matches": ("for this incident", "适用于此事件"),
    "modal.manual_only": ("manual only", "仅手动启动"),
    "modal.manual_heading": ("Open an incident by hand", "手动创建事件"),
    "modal.title": ("Title", "标题"),
    "modal.severity": ("Severity", "级别"),
    "modal.subject": ("Subject (queue, system, site…)", "对象（队列、系统、站点…）"),
    "modal.silence_heading": (
        "Silence this rule on this subject (no new incidents, no notifications)",
        "静默此规则在此对象上（不再产生新事件、不再通知）",
    ),
    "modal.duration": ("For", "时长"),
    "modal.reason": ("Reason (kept in the audit log)", "原因（记入审计日志）"),
    "modal.minutes": ("{n} minutes", "{n} 分钟"),
    "modal.hours": ("{n} hours", "{n} 小时"),
    "modal.skip_reason": ("Skip step {step}: why?", "跳过步骤 {step}：原因？"),
    "modal.abort_reason": ("Abort run {id}: why? (required)", "中止预案执行 {id}：原因？（必填）"),
    "error.fields": ("Fill in every field", "请填写所有字段"),
    # timeline events (incident store, engine, playbook runner)
    "event.opened": ("opened", "创建"),
    "event.updated": ("updated", "更新"),
    "event.severity_raised": ("severity raised", "级别升高"),
    "event.acknowledged": ("acknowledged", "已确认"),
    "event.resolved": ("resolved", "已解决"),
    "event.note": ("note", "备注"),
    "event.playbook_started": ("playbook started", "预案启动"),
    "event.playbook_completed": ("playbook completed", "预案完成"),
    "event.playbook_aborted": ("playbook aborted", "预案中止"),
    "event.step_done": ("step done", "步骤完成"),
    "event.step_skipped": ("step skipped", "步骤跳过"),
    "event.step_escalated": ("step escalated", "步骤升级"),
    "event.step_late": ("step late", "步骤超时"),
    "event.step_failed": ("step failed", "步骤失败"),
    "event.step_approved": ("step approved", "步骤已审批"),
    "event.step_awaiting_approval": ("step awaits approval", "步骤待审批"),
    "event.covered": ("covered by a running playbook", "已由进行中的预案覆盖"),
    "event.covers": ("also covers", "同时覆盖"),
    "event.condition_cleared": ("condition cleared", "条件已消除"),
    "event.cleared": ("condition cleared", "条件已消除"),
    "event.rollup": ("rolled up", "已合并"),
    "event.reopened": ("reopened: the condition still held", "已重新打开：条件仍然存在"),
    "event.playbook_standing_down": ("playbook standing down", "预案暂停"),
    "event.playbook_resumed": ("playbook resumed", "预案恢复"),
    "incident.reopened_from": (
        "↻ Reopened: the condition still held after {id} was resolved",
        "↻ 重新打开：{id} 解决后条件仍然存在",
    ),
    "run.standing_down": ("standing down: {reason}", "暂停：{reason}"),
    "error.api": ("The API refused: {error}", "API 拒绝：{error}"),
    "error.unreachable": ("The API is unreachable: {error}", "无法连接 API：{error}"),
    "error.no_step": ("Select a step first", "请先选择一个步骤"),
    "error.no_run": ("This incident has no playbook run", "此事件没有预案执行"),
    # keys (footer and help)
    "key.quit": ("Quit", "退出"),
    "key.help": ("Help", "帮助"),
    "key.board": ("Board", "总览"),
    "key.audit": ("Audit", "审计"),
    "key.open": ("Open", "打开"),
    "key.sort": ("Sort", "排序"),
    "key.back": ("Back", "返回"),
    "key.ack": ("Ack", "确认"),
    "key.resolve": ("Resolve", "解决"),
    "key.note": ("Note", "备注"),
    "key.step_done": ("Step done", "步骤完成"),
    "key.escalate": ("Escalate", "升级"),
    "key.approve": ("Approve step", "审批步骤"),
    "key.start": ("Start playbook", "启动预案"),
    "key.manual": ("New incident", "新建事件"),
    "help.col.key": ("key", "按键"),
    "help.col.where": ("where", "位置"),
    "help.col.what": ("does", "功能"),
    "key.silence": ("Silence", "静默"),
    "key.skip": ("Skip step", "跳过步骤"),
    "key.abort": ("Abort run", "中止预案"),
    "key.filter": ("Filter", "筛选"),
    "key.verify": ("Verify", "验证"),
    "key.focus": ("Next tile", "下一区域"),
    "key.palette": ("Commands", "命令"),
    "help.heading": ("Keys", "快捷键"),
    "help.role": ("Signed in as {name} ({role})", "当前用户 {name}（{role}）"),
    "help.where.any": ("anywhere", "任意界面"),
    "help.where.board": ("board", "总览"),
    "help.where.incident": ("incident", "事件"),
    "help.where.audit": ("audit", "审计"),
    "help.not_allowed": ("(not allowed for your role)", "（您的角色无此权限）"),
}


class Translator:
    """Looks strings up in one language: ``tr("tile.age", age="3s")``."""

    def __init__(self, lang: str = "en") -> None:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
        self.lang = lang
        self._index = LANGS.index(lang)

    def __call__(self, key: str, **values: object) -> str:
        pair = STRINGS.get(key)
        text = key.rsplit(".", 1)[-1] if pair is None else (pair[self._index] or pair[0])
        return text.format(**values) if values else text
