"""Small modal screens: a note, a confirmation, starting a playbook by hand."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label

from watchfloor.console.i18n import Translator


class NoteModal(ModalScreen[str | None]):
    """Ask for a line of text; Enter returns it, Escape returns ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        tr: Translator = self.app.tr  # type: ignore[attr-defined]
        with Vertical(classes="modal"):
            yield Label(self.prompt)
            yield Input(id="note-input")
            with Horizontal(classes="modal-buttons"):
                yield Button(tr("modal.ok"), id="ok", variant="primary")
                yield Button(tr("modal.cancel"), id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.dismiss(self.query_one(Input).value.strip())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    """Yes or no; ``y``/Enter confirms, ``n``/Escape declines."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", show=False),
        Binding("y", "answer(True)", show=False),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        tr: Translator = self.app.tr  # type: ignore[attr-defined]
        with Vertical(classes="modal"):
            yield Label(self.question)
            with Horizontal(classes="modal-buttons"):
                yield Button(tr("modal.confirm"), id="yes", variant="warning")
                yield Button(tr("modal.cancel"), id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class StartPlaybookModal(ModalScreen[tuple[str, bool] | None]):
    """Which playbook to start for this incident, and whether as a drill."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, tr: Translator, default: str = "") -> None:
        super().__init__()
        self.tr = tr
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(self.tr("modal.playbook"))
            yield Input(self.default, id="playbook-input")
            yield Checkbox(self.tr("modal.drill"), id="drill")
            with Horizontal(classes="modal-buttons"):
                yield Button(self.tr("modal.ok"), id="ok", variant="primary")
                yield Button(self.tr("modal.cancel"), id="cancel")

    def _answer(self) -> None:
        playbook = self.query_one(Input).value.strip()
        self.dismiss((playbook, self.query_one(Checkbox).value) if playbook else None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._answer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._answer()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
