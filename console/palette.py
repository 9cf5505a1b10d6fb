"""The command palette's entries: screens, the current incident's actions, open incidents.

Only what the signed-in role may do is listed (the same checks as the keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import SystemCommand
from textual.screen import Screen

from watchfloor.console.host import ConsoleHost
from watchfloor.console.messages import IncidentOpened
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.titles import incident_title

MAX_INCIDENTS = 20


def palette_commands(app: ConsoleHost, screen: Screen[Any]) -> Iterable[SystemCommand]:
    tr = app.tr
    yield SystemCommand(tr("key.board"), tr("key.board"), app.action_board)
    yield SystemCommand(tr("key.help"), tr("key.help"), app.action_help)
    if app.may("show_audit"):
        yield SystemCommand(tr("key.audit"), tr("audit.heading"), app.action_show_audit)
    yield SystemCommand(tr("key.silences"), tr("silences.heading"), app.action_show_silences)
    yield SystemCommand(tr("key.history"), tr("history.heading"), app.action_show_history)
    yield SystemCommand(tr("key.handover"), tr("key.handover"), app.action_show_handover)
    if app.may("open_incident"):
        yield SystemCommand(tr("key.manual"), tr("modal.manual_heading"), app.action_open_incident)
    if isinstance(screen, IncidentScreen):
        for key, binding in screen._bindings:
            action = binding.action
            if binding.description and screen.check_action(action, ()) is True:
                yield SystemCommand(binding.description, key, lambda a=action: screen.run_action(a))
    for inc in app.board.open_incidents()[:MAX_INCIDENTS]:
        yield SystemCommand(
            f"{inc['id']} {incident_title(inc, tr.lang)}",
            tr("key.open"),
            lambda i=inc["id"]: app.post_message(IncidentOpened(i)),
        )
    yield SystemCommand(tr("key.quit"), tr("key.quit"), app.exit)
