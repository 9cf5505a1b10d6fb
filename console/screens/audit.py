"""The security officer's audit screen: a live tail with filters and the chain's status.

New records are polled from ``GET /v1/audit?after=SEQ`` (the live feed does
not carry the audit log); the verification line comes from
``GET /v1/audit/verify`` when the API offers it, and so does the banner shown
while the audit is halted (a forked chain: its ``problems``).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Input, Static

from watchfloor.console.names import shown_name
from watchfloor.console.screens.base import ConsoleScreen
from watchfloor.console.widgets.status_bar import StatusBar
from watchfloor.console.widgets.tables import StyledTable
from watchfloor.console.widgets.tile import Tile
from watchfloor.core.printable import printable

KEEP_RECORDS = 5000
POLL_S = 2.0
VERIFY_EVERY_S = 30.0
COLUMNS = (
    ("seq", "col.seq"),
    ("at", "col.at"),
    ("actor", "col.actor"),
    ("role", "col.role"),
    ("action", "col.action"),
    ("target", "col.target"),
    ("outcome", "col.outcome"),
)


def record_time(at: Any) -> str:
    """``MM-DD HH:MM:SS`` of a record time given as Unix seconds or RFC 3339 text."""
    if isinstance(at, (int, float)):
        return time.strftime("%m-%d %H:%M:%S", time.localtime(at))
    if isinstance(at, str) and len(at) >= 19:
        return f"{at[5:10]} {at[11:19]}"
    return str(at or "")


def matches(record: dict[str, Any], words: list[str]) -> bool:
    """Every word of the filter appears in the actor, action, target, role or outcome."""
    hay = " ".join(
        str(record.get(k, "")) for k in ("actor", "action", "target", "role", "outcome")
    ).casefold()
    return all(w in hay for w in words)


def verify_text(status: dict[str, Any] | None, tr: Any) -> tuple[str, bool]:
    """(the line to show, whether the chain is intact) from the verify answer."""
    if status is None:
        return tr("audit.verify_missing"), True
    if not status.get("ok", True):
        bad = status.get("first_bad_seq", "?")
        return tr("audit.broken", n=bad, reason=printable(status.get("reason") or "")), False
    upto = status.get("verified_upto", "?")
    checkpoint = status.get("last_checkpoint_seq")
    checkpoint = f"#{checkpoint}" if checkpoint is not None else "—"
    return tr("audit.verified", n=upto, cp=checkpoint), True


def halted_text(status: dict[str, Any] | None, tr: Any) -> str:
    """The banner for problems that stop the audit (a fork: ``integrity``); empty when none."""
    problems = (status or {}).get("problems") or {}
    lines = [  # integrity stops signing; a failing witness does not (it is retried)
        tr(
            "audit.halted" if name == "integrity" else "audit.problem",
            name=printable(name),
            reason=printable(p.get("reason", ""))[:300],
        )
        for name, p in sorted(problems.items())
        if isinstance(p, dict)
    ]
    return "\n".join(lines)


class AuditScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "key.back"),
        Binding("slash", "focus_filter", "key.filter"),
        Binding("v", "verify", "key.verify"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self.last_seq = 0
        self.words: list[str] = []
        self._last_verify = 0.0

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(f"{tr('app.title')} · {tr('audit.heading')}")
        yield Static("", id="audit-banner")
        with Horizontal(id="audit-bar"):
            yield Input(placeholder=tr("audit.filter"), id="audit-filter")
            yield Static(tr("audit.verify_pending"), id="audit-verify")
        yield Tile(StyledTable(id="audit-table"), title=tr("audit.heading"), id="tile-audit")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#audit-table", StyledTable)
        table.cursor_type = "row"
        for key, label in COLUMNS:
            table.add_column(self.console.tr(label), key=key)
        table.focus()  # keys (/ and v) work at once; / moves to the filter
        self.poll()
        self.action_verify()

    def tick(self, now: float) -> None:
        super().tick(now)
        if now - self._last_verify > VERIFY_EVERY_S:
            self.action_verify()

    def poll(self) -> None:
        after = self.last_seq
        self.console.fetch(lambda api: api.audit(after), self.records_loaded)

    def records_loaded(self, records: list[dict[str, Any]]) -> None:
        """New records from the API (called by the app); schedules the next poll."""
        if not self.alive:
            return
        fresh = [r for r in records if int(r.get("seq", 0)) > self.last_seq]
        if fresh:
            self.last_seq = max(int(r.get("seq", 0)) for r in fresh)
            self.records = (self.records + fresh)[-KEEP_RECORDS:]
            table = self.query_one("#audit-table", StyledTable)
            follow = table.cursor_row >= table.row_count - 1
            for record in fresh:
                if matches(record, self.words):
                    self._add(table, record)
            if follow and table.row_count:
                table.move_cursor(row=table.row_count - 1, animate=False)
        self.set_timer(POLL_S, self.poll)

    def _add(self, table: StyledTable, record: dict[str, Any]) -> None:
        when = record_time(record.get("at"))
        outcome = str(record.get("outcome", ""))
        lang = self.console.tr.lang
        t = table.styled
        # every field escaped: a record's target can be whatever a caller sent (auth.failed)
        table.add_row(
            t(printable(record.get("seq"))),
            t(when),
            t(printable(shown_name("actor", record.get("actor", ""), lang))),
            t(printable(_role(self.console.tr, record.get("role")))),
            t(printable(shown_name("action", record.get("action", ""), lang))),
            t(printable(_target(record, lang))),
            t(
                printable(shown_name("outcome", outcome, lang)),
                None if outcome == "ok" else "level--breach",
            ),
            key=str(record.get("seq")),
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        self.words = event.value.casefold().split()
        table = self.query_one("#audit-table", StyledTable)
        table.clear()
        for record in self.records:
            if matches(record, self.words):
                self._add(table, record)

    def action_focus_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def action_verify(self) -> None:
        self._last_verify = time.time()
        self.console.fetch(lambda api: api.audit_verify(), self.verify_loaded)

    def verify_loaded(self, status: dict[str, Any] | None) -> None:
        if not self.alive:
            return
        text, ok = verify_text(status, self.console.tr)
        line = self.query_one("#audit-verify", Static)
        line.update(text)
        line.set_class(not ok, "-critical")
        line.set_class(ok and status is not None, "-ok")
        banner = self.query_one("#audit-banner", Static)
        text = halted_text(status, self.console.tr)
        banner.update(text)
        banner.set_class(bool(text), "-shown")


def _target(record: dict[str, Any], lang: str) -> str:
    """The record's target; a flag's name in the interface's language."""
    target = record.get("target", "")
    return shown_name("flag", target, lang) if record.get("action") == "flag.set" else str(target)


def _role(tr: Any, role: Any) -> str:
    """A record's role: its name in Chinese, the role id in English (what the log holds)."""
    return tr(f"role.{role}") if tr.lang == "zh" and role else str(role or "")
