"""Dialogs that gather a command's fields: the playbook picker, a manual incident, a silence.

Each returns its answer through ``dismiss`` (``None`` when cancelled) and never
calls the API itself: the screen that opened it sends the command, so every
failure still ends in the app's one error funnel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select
from textual.widgets.option_list import Option

from watchfloor.console import format as fmt
from watchfloor.console.i18n import Translator
from watchfloor.console.names import matchers_text
from watchfloor.core.vocabulary import SEVERITIES_WORST_FIRST

SEVERITIES = SEVERITIES_WORST_FIRST
SILENCE_MINUTES = (15, 30, 60, 120, 240, 480, 1440)


def ranked_playbooks(playbooks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Those that start for this incident's kind first, then the manual-only ones, then the rest."""

    def rank(playbook: dict[str, Any]) -> tuple[int, str]:
        if kind and kind in (playbook.get("kinds") or ()):
            return (0, str(playbook.get("id")))
        return (1 if playbook.get("manual_only") else 2, str(playbook.get("id")))

    return sorted(playbooks, key=rank)


class FormModal(ModalScreen[Any]):
    """Shared parts: Escape cancels; OK and Enter in the last input submit."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, tr: Translator) -> None:
        super().__init__()
        self.tr = tr

    def buttons(self) -> ComposeResult:
        with Horizontal(classes="modal-buttons"):
            yield Button(self.tr("modal.ok"), id="ok", variant="primary")
            yield Button(self.tr("modal.cancel"), id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def submit(self) -> None:
        raise NotImplementedError


class PlaybookPicker(FormModal):
    """Choose a playbook from the library; answers ``(playbook id, drill)``."""

    def __init__(self, tr: Translator, playbooks: list[dict[str, Any]], kind: str) -> None:
        super().__init__(tr)
        self.playbooks = ranked_playbooks(playbooks, kind)
        self.kind = kind

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal picker"):
            yield Label(self.tr("modal.pick_playbook"))
            yield OptionList(*(self._option(p) for p in self.playbooks), id="playbooks")
            yield Checkbox(self.tr("modal.drill"), id="drill")
            yield from self.buttons()

    def _option(self, playbook: dict[str, Any]) -> Option:
        text = Text()
        text.append(fmt.localized(playbook.get("title") or playbook.get("id"), self.tr.lang),
                    style="bold")  # fmt: skip
        text.append(f"  {playbook.get('id')} · {len(playbook.get('steps') or ())} ")
        text.append(self.tr("modal.steps"))
        if self.kind and self.kind in (playbook.get("kinds") or ()):
            text.append(f"  ★ {self.tr('modal.matches')}", style="green")
        elif playbook.get("manual_only"):
            text.append(f"  {self.tr('modal.manual_only')}", style="yellow")
        return Option(text, id=str(playbook.get("id")))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0 if self.playbooks else None
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.submit()

    def submit(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        chosen = options.get_option_at_index(options.highlighted).id
        self.dismiss((chosen, self.query_one(Checkbox).value))


@dataclass(frozen=True, slots=True)
class ManualIncident:
    title: str
    severity: str
    subject: str


class ManualIncidentModal(FormModal):
    """Open an incident by hand: title, severity, subject (``POST /v1/incidents``)."""

    def compose(self) -> ComposeResult:
        tr = self.tr
        with Vertical(classes="modal"):
            yield Label(tr("modal.manual_heading"), classes="modal-heading")
            yield Label(tr("modal.title"))
            yield Input(id="manual-title")
            yield Label(tr("modal.severity"))
            yield Select([(tr(f"sev.{s}"), s) for s in SEVERITIES], value="major",
                         allow_blank=False, id="manual-severity")  # fmt: skip
            yield Label(tr("modal.subject"))
            yield Input(id="manual-subject", placeholder=tr("modal.subject_example"))
            yield from self.buttons()

    def on_mount(self) -> None:
        self.query_one("#manual-title", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "manual-title":
            self.query_one("#manual-subject", Input).focus()
        else:
            self.submit()

    def submit(self) -> None:
        title = self.query_one("#manual-title", Input).value.strip()
        subject = self.query_one("#manual-subject", Input).value.strip()
        if not title or not subject:
            self.notify(self.tr("error.fields"), severity="warning")
            return
        severity = str(self.query_one("#manual-severity", Select).value)
        self.dismiss(ManualIncident(title, severity, subject))


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    matchers: dict[str, str]
    duration_s: float
    reason: str


class SilenceModal(FormModal):
    """Silence an incident's rule on its subject for a while, with a reason."""

    def __init__(self, tr: Translator, rule: str, subject: str) -> None:
        super().__init__(tr)
        self.matchers = {k: v for k, v in (("rule", rule), ("subject", subject)) if v}

    def compose(self) -> ComposeResult:
        tr = self.tr
        with Vertical(classes="modal"):
            yield Label(tr("modal.silence_heading"), classes="modal-heading")
            yield Label(Text(matchers_text(self.matchers, tr.lang)))
            yield Label(tr("modal.duration"))
            yield Select([(_span(tr, m), m) for m in SILENCE_MINUTES], value=60,
                         allow_blank=False, id="silence-duration")  # fmt: skip
            yield Label(tr("modal.reason"))
            yield Input(id="silence-reason")
            yield from self.buttons()

    def on_mount(self) -> None:
        self.query_one("#silence-reason", Input).focus()

    def submit(self) -> None:
        reason = self.query_one("#silence-reason", Input).value.strip()
        if not reason:
            self.notify(self.tr("error.fields"), severity="warning")
            return
        minutes = int(self.query_one("#silence-duration", Select).value)  # type: ignore[arg-type]
        self.dismiss(SilenceRequest(dict(self.matchers), minutes * 60.0, reason))


def _span(tr: Translator, minutes: int) -> str:
    if minutes < 60:
        return tr("modal.minutes", n=minutes)
    return tr("modal.hours", n=minutes // 60)
