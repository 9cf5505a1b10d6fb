"""What a page says and whom it @mentions: roster people as robot mentions, ack links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from watchfloor.playbooks.actions.notify import Mention, Message
from watchfloor.playbooks.roster import Person

HEADLINES: Final = {
    "opened": "[{severity}] {title}",
    "raised": "[{severity}] Severity raised: {title}",
    "escalation": "[{severity}] Not acknowledged, escalated: {title}",
    "resolved": "[resolved] {title}",
}


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
) -> Message:
    """The page for ``event`` about ``incident`` to ``people`` (``(role, person)``), with one
    acknowledge link per person (``links`` by person id; none once resolved)."""
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
