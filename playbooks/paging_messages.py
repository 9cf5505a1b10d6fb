"""What a page says and whom it @mentions: roster people as robot mentions, ack links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from watchfloor.core.incident_titles import KIND_ZH, SEVERITY_ZH, zh_title
from watchfloor.core.vocabulary import INCIDENT_STATES
from watchfloor.playbooks.actions.notify import Mention, Message
from watchfloor.playbooks.roster import Person

HEADLINES: Final = {
    "opened": "[{severity}] {title}",
    "raised": "[{severity}] Severity raised: {title}",
    "escalation": "[{severity}] Not acknowledged, escalated: {title}",
    "resolved": "[resolved] {title}",
}
HEADLINES_ZH: Final = {
    "opened": "【{severity}】{title}",
    "raised": "【{severity}·升级】{title}",
    "escalation": "【{severity}·未确认，已升级】{title}",
    "resolved": "【已解决】{title}",
}
ROLES_ZH: Final = {"duty_manager": "值班主管", "oncall": "值班工程师",
                   "security_officer": "安全负责人", "backup": "备班"}  # fmt: skip
STATES_ZH: Final = dict(zip(INCIDENT_STATES, ("未处理", "已确认", "已解决"), strict=True))


def mention_of(person: Person) -> Mention:
    return Mention(
        person.name,
        mobile=person.mobile or "",
        dingtalk=person.dingtalk or "",
        wecom=person.wecom or "",
        feishu=person.feishu or "",
    )


def page_message(
    incident: Mapping[str, Any],
    event: str,
    people: Sequence[tuple[str, Person]],
    links: Mapping[str, str],
    context: dict[str, Any],
    lang: str = "en",
) -> Message:
    """The page for ``event`` about ``incident`` to ``people`` (``(role, person)``), with one
    acknowledge link per person (``links`` by person id; none once resolved), in the site's
    language (``zh``: composed from the incident's fields as the console does)."""
    if lang == "zh":
        return _page_zh(incident, event, people, links, context)
    values = {k: incident.get(k, "") for k in ("severity", "title", "subject", "kind", "id")}
    title = HEADLINES[event].format(**values)
    lines = [
        f"Incident {values['id']} ({values['kind']}, {values['subject']}), "
        f"state {incident.get('state', '')}.",
    ]
    if people:
        lines.append("Paged: " + ", ".join(f"{p.name} ({role})" for role, p in people))
    elif event != "resolved":
        lines.append("Nobody is on duty for the paged role: check the roster.")
    for _role, person in people:
        if person.id in links:
            lines.append(f"Acknowledge as {person.name}: {links[person.id]}")
    mentions = tuple(mention_of(p) for _r, p in people) if event != "resolved" else ()
    return Message(title, "\n\n".join(lines), context, mentions)


def _page_zh(
    incident: Mapping[str, Any],
    event: str,
    people: Sequence[tuple[str, Person]],
    links: Mapping[str, str],
    context: dict[str, Any],
) -> Message:
    kind, subject = str(incident.get("kind", "")), str(incident.get("subject", ""))
    severity = str(incident.get("severity", ""))
    title = zh_title(incident) or f"{KIND_ZH.get(kind, kind)}：{subject}"
    headline = HEADLINES_ZH[event].format(severity=SEVERITY_ZH.get(severity, severity), title=title)
    state = str(incident.get("state", ""))
    lines = [f"事件 {incident.get('id', '')}（{KIND_ZH.get(kind, kind)}，{subject}），"
             f"状态：{STATES_ZH.get(state, state)}。"]  # fmt: skip
    if people:
        lines.append("已呼叫：" + "、".join(f"{p.name}（{ROLES_ZH.get(r, r)}）" for r, p in people))
    elif event != "resolved":
        lines.append("该角色当前无人值班：请检查值班表。")
    for _role, person in people:
        if person.id in links:
            lines.append(f"{person.name} 确认接手：{links[person.id]}")
    mentions = tuple(mention_of(p) for _r, p in people) if event != "resolved" else ()
    return Message(headline, "\n\n".join(lines), context, mentions)
