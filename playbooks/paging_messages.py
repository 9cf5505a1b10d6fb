"""What a page says and whom it @mentions: roster people as robot mentions, ack links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from watchfloor.core.incident_titles import KIND_ZH, SEVERITY_ZH, zh_title
from watchfloor.core.vocabulary import INCIDENT_STATES
from watchfloor.playbooks.actions.notify import Mention, Message
from watchfloor.playbooks.roster import Person


@dataclass(frozen=True, slots=True)
class PageTexts:
    """What a page says in one language; ``{…}`` fields are filled from the incident."""

    headlines: Mapping[str, str]
    about: str
    paged: str
    person: str
    joiner: str
    nobody: str
    acknowledge: str
    roles: Mapping[str, str] = field(default_factory=dict)
    states: Mapping[str, str] = field(default_factory=dict)


TEXTS: Final = {
    "en": PageTexts(
        headlines={
            "opened": "[{severity}] {title}",
            "raised": "[{severity}] Severity raised: {title}",
            "escalation": "[{severity}] Not acknowledged, escalated: {title}",
            "resolved": "[resolved] {title}",
        },
        about="Incident {id} ({kind}, {subject}), state {state}.",
        paged="Paged: ",
        person="{name} ({role})",
        joiner=", ",
        nobody="Nobody is on duty for the paged role: check the roster.",
        acknowledge="Acknowledge as {name}: {link}",
    ),
    "zh": PageTexts(
        headlines={
            "opened": "【{severity}】{title}",
            "raised": "【{severity}·升级】{title}",
            "escalation": "【{severity}·未确认，已升级】{title}",
            "resolved": "【已解决】{title}",
        },
        about="事件 {id}（{kind}，{subject}），状态：{state}。",
        paged="已呼叫：",
        person="{name}（{role}）",
        joiner="、",
        nobody="该角色当前无人值班：请检查值班表。",
        acknowledge="{name} 确认接手：{link}",
        roles={
            "duty_manager": "值班主管",
            "oncall": "值班工程师",
            "security_officer": "安全负责人",
            "backup": "备班",
        },
        states=dict(zip(INCIDENT_STATES, ("未处理", "已确认", "已解决"), strict=True)),
    ),
}
"""Page texts by site language (``[console] lang``)."""


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
    language (``zh``: the title composed from the incident's fields as the console does)."""
    texts = TEXTS.get(lang, TEXTS["en"])
    values = {k: str(incident.get(k, "")) for k in ("severity", "title", "subject", "kind", "id")}
    values["state"] = str(incident.get("state", ""))
    if lang == "zh":
        kind = values["kind"]
        values["title"] = zh_title(incident) or f"{KIND_ZH.get(kind, kind)}：{values['subject']}"
        values.update(severity=SEVERITY_ZH.get(values["severity"], values["severity"]),
                      kind=KIND_ZH.get(kind, kind))  # fmt: skip
    values["state"] = texts.states.get(values["state"], values["state"])
    lines = [texts.about.format(**values)]
    if people:
        named = (texts.person.format(name=p.name, role=texts.roles.get(r, r)) for r, p in people)
        lines.append(texts.paged + texts.joiner.join(named))
    elif event != "resolved":
        lines.append(texts.nobody)
    for _role, person in people:
        if person.id in links:
            lines.append(texts.acknowledge.format(name=person.name, link=links[person.id]))
    mentions = tuple(mention_of(p) for _r, p in people) if event != "resolved" else ()
    return Message(texts.headlines[event].format(**values), "\n\n".join(lines), context, mentions)
