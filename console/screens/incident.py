"""One incident: title, masked evidence, timeline, and its playbook run.

Keys act on the incident (a acknowledge, r resolve with a note, n add a note)
and on the selected step of its run (d done, e escalate), or start a playbook
by hand (p). Only the keys the API says this token may use here are offered
(``GET /v1/permissions`` for the incident, its run and the selected step,
asked again when they change); the API refuses the others anyway. The
incident and run come live from the board model; the timeline is fetched from
the API and fetched again when the incident changes.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Static

from watchfloor.console import format as fmt
from watchfloor.console.evidence import evidence_lines, pairs
from watchfloor.console.names import shown_name
from watchfloor.console.permissions import Allowed
from watchfloor.console.screens.base import ConsoleScreen
from watchfloor.console.screens.forms import PlaybookPicker, SilenceModal, SilenceRequest
from watchfloor.console.screens.modals import NoteModal, StartPlaybookModal
from watchfloor.console.state import LATE_STATES, Dirty
from watchfloor.console.titles import incident_title
from watchfloor.console.widgets.status_bar import StatusBar
from watchfloor.console.widgets.tables import StyledTable
from watchfloor.console.widgets.tile import Tile
from watchfloor.core.vocabulary import DEFAULT_PLAYBOOKS, SEVERITIES

NARROW_BELOW = 140
FALLBACK_PLAYBOOKS = DEFAULT_PLAYBOOKS
"""Pre-filled in the start-playbook dialog by incident kind when the API gives no library."""


class StepTable(StyledTable):
    """The steps of a run: title, owner, state, deadline countdown, who did it."""

    def setup(self, tr: Any) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (
            ("step", "col.step"),
            ("owner", "col.owner"),
            ("state", "col.state"),
            ("deadline", "col.deadline"),
            ("by", "col.by"),
        ):
            self.add_column(tr(label), key=key)

    run: dict[str, Any] | None = None

    def cells(self, step: dict[str, Any], now: float) -> list[Any]:
        state = str(step.get("state", "pending"))
        deadline = step.get("deadline")
        finished = state in ("done", "skipped")
        late = not finished and (state in LATE_STATES or (deadline is not None and deadline < now))
        cls = "step--done" if finished else ("step--late" if late else "step--active")
        label = "step.awaiting_approval" if step.get("awaiting_approval") else f"step.{state}"
        return [
            self.styled(
                fmt.truncate(self.app.step_title(self.run, step), 40)  # type: ignore[attr-defined]
            ),
            self.styled(self.tr(f"role.{step.get('owner')}") if step.get("owner") else ""),
            self.styled(self.tr(label), cls),
            self.styled(
                "—" if finished else fmt.countdown(deadline, now, self.tr.lang),
                "step--late" if late else None,
            ),
            self.styled(str(step.get("done_by") or "")),
        ]

    def show(self, run: dict[str, Any] | None, now: float) -> None:
        self.run = run
        steps = (run or {}).get("steps") or []
        keys = [str(s.get("id")) for s in steps]
        if keys != self.keys_in_order():
            self.rebuild((str(s.get("id")), self.cells(s, now)) for s in steps)
        else:
            self.put_rows({str(step.get("id")): self.cells(step, now) for step in steps})


class IncidentScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "key.back"),
        Binding("a", "acknowledge", "key.ack"),
        Binding("r", "resolve", "key.resolve"),
        Binding("n", "add_note", "key.note"),
        Binding("d", "step_done", "key.step_done"),
        Binding("e", "escalate", "key.escalate"),
        Binding("A", "approve", "key.approve", show=False),
        Binding("p", "start_playbook", "key.start"),
        Binding("S", "silence", "key.silence", show=False),
        Binding("k", "skip_step", "key.skip", show=False),
        Binding("X", "abort_run", "key.abort", show=False),
        Binding("R", "retry_step", "key.retry"),
    ]

    def __init__(self, incident_id: str, run_id: str | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.run_id = run_id
        """A run opened on its own (a drill started without an incident): ``incident_id`` ""."""
        self.timeline: list[dict[str, Any]] = []
        self.extra_run: dict[str, Any] | None = None
        self.allowed = Allowed()
        """The API's answer for this incident and run: nothing is offered before it."""
        self.permissions_known = False

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(f"{tr('app.title')} · {tr('incident.heading')} {self.incident_id}")
        yield Static("", id="incident-header")
        with Horizontal(id="incident-body"):
            with Vertical(id="incident-left"):
                yield Tile(
                    VerticalScroll(Static("", id="evidence")),
                    title=tr("incident.evidence"),
                    id="tile-evidence",
                )
                yield Tile(
                    VerticalScroll(Static("", id="timeline")),
                    title=tr("incident.timeline"),
                    id="tile-timeline",
                )
            yield Tile(
                Static("", id="run-summary"),
                StepTable(id="steps"),
                title=tr("incident.run"),
                id="tile-run",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StepTable).setup(self.console.tr)
        self.query_one(StepTable).focus()  # ↑↓ choose the step that d, e, A, k act on
        self.load_timeline()
        self.load_permissions()

    def on_resize(self, event: Any) -> None:
        self.set_class(event.size.width < NARROW_BELOW, "-narrow")
        self.query_one(Footer).compact = event.size.width < NARROW_BELOW  # more keys fit
        self.call_after_refresh(self.fit)

    def fit(self) -> None:
        """Evidence and run as tall as they need (within limits); the timeline gets the rest."""
        if not self.is_mounted:
            return
        body = self.query_one("#incident-body").size.height
        if not body:
            return
        narrow = self.has_class("-narrow")
        border = 1 if narrow else 2
        steps = len((self.run or {}).get("steps") or ())
        run_height = min(steps + 2 + border, max(border + 3, body * 3 // 5)) if narrow else None
        left = body - (run_height or 0)
        evidence = len((self.incident or {}).get("evidence") or {}) or 1
        evidence_height = min(evidence + border, max(border + 2, left * 2 // 5))
        for selector, height in (("#tile-run", run_height), ("#tile-evidence", evidence_height)):
            tile = self.query_one(selector)
            wanted = "1fr" if height is None else str(height)
            if str(tile.styles.height) != wanted:
                tile.styles.height = wanted

    @property
    def incident(self) -> dict[str, Any] | None:
        return self.console.board.incidents.get(self.incident_id)

    @property
    def run(self) -> dict[str, Any] | None:
        board = self.console.board
        run = board.runs.get(self.run_id) if self.run_id else board.run_for(self.incident_id)
        return run if run is not None else self.extra_run

    def load_timeline(self) -> None:
        incident_id = self.incident_id
        if not incident_id:  # a drill without an incident has no timeline to fetch
            return
        self.console.fetch(lambda api: api.incident(incident_id), self.timeline_loaded)

    def timeline_loaded(self, detail: dict[str, Any]) -> None:
        """The API answered ``GET /v1/incidents/{id}`` (called by the app)."""
        if not self.alive:
            return
        nested = detail.get("incident")
        incident: dict[str, Any] = nested if isinstance(nested, dict) else detail
        if incident.get("id") == self.incident_id and self.incident is None:
            self.console.board.incidents[self.incident_id] = incident
        self.timeline = list(detail.get("timeline") or incident.get("timeline") or [])
        self.draw(Dirty(reset=True))

    def load_permissions(self) -> None:
        incident_id, run_id = self.incident_id, (self.run or {}).get("id")
        self.console.fetch(
            lambda api: api.permissions(incident_id, run_id), self.permissions_loaded
        )

    def permissions_loaded(self, answer: dict[str, Any]) -> None:
        """The API answered ``GET /v1/permissions`` (called by the app)."""
        if not self.alive:
            return
        self.allowed = Allowed.from_answer(answer)
        self.permissions_known = True
        self.refresh_bindings()
        self._draw_run(self.console.board.server_now(time.time()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.allowed.may(action, self._cursor_step())

    def _cursor_step(self) -> str | None:
        tables = self.query(StepTable)
        return tables.first().cursor_key() if tables else None

    def on_data_table_row_highlighted(self, _: Any) -> None:
        self.refresh_bindings()  # the keys offered follow the selected step

    def draw(self, dirty: Dirty) -> None:
        if not (dirty.reset or self.incident_id in dirty.incident or dirty.run):
            return
        run_id = (self.run or {}).get("id")
        if dirty.reset or self.incident_id in dirty.incident or run_id in dirty.run:
            self.load_permissions()
        now = self.console.board.server_now(time.time())
        self._draw_header(now)
        self._draw_evidence()
        self._draw_timeline()
        self._draw_run(now)
        self.fit()
        if self.incident_id in dirty.incident and not dirty.reset:
            self.load_timeline()

    def _draw_header(self, now: float) -> None:
        tr, inc = self.console.tr, self.incident
        header = self.query_one("#incident-header", Static)
        if inc is None and self.run_id:
            header.update(tr("incident.drill_alone", id=self.run_id))
            return
        if inc is None:
            header.update(tr("incident.unknown", id=self.incident_id))
            return
        severity, state = inc.get("severity", "info"), inc.get("state", "open")
        for level in SEVERITIES:
            header.set_class(level == severity, f"-{level}")
        text = Text()
        text.append(f" {tr(f'sev.{severity}')} ", style="bold reverse")
        text.append(f" {incident_title(inc, tr.lang)}\n", style="bold")
        text.append(
            f"{inc.get('id')} · {tr(f'state.{state}')} · {tr('incident.subject')}: "
            f"{inc.get('subject')} · {tr('incident.opened')} "
            f"{fmt.age(inc.get('opened_at'), now, tr.lang)} · ×{inc.get('count', 1)}"
        )
        if inc.get("reopened_from"):
            text.append("\n" + tr("incident.reopened_from", id=inc["reopened_from"]), style="bold")
        header.update(text)

    def _draw_evidence(self) -> None:
        evidence = (self.incident or {}).get("evidence") or {}
        shown = evidence_lines(evidence, self.console.tr.lang)  # labelled, never a raw dict
        width = max((cell_len(k) for k, _ in shown), default=0)
        lines = [f"{fmt.pad(k, width)}  {fmt.truncate(v, 80)}" for k, v in shown]
        text = Text("\n".join(lines) or "—", no_wrap=True, overflow="ellipsis")
        self.query_one("#evidence", Static).update(text)

    def _draw_timeline(self) -> None:
        # Newest first: what just happened is what the reader needs, without scrolling.
        entries = sorted(self.timeline, key=lambda e: -float(e.get("at") or 0.0))  # stable
        lines = [self._timeline_line(entry) for entry in entries]
        self.query_one("#timeline", Static).update(Text("\n".join(lines) or "—"))

    def _timeline_line(self, entry: dict[str, Any]) -> str:
        """``14:02:11 step done · Check the queue · alice — note`` in the chosen language."""
        at = entry.get("at")
        when = time.strftime("%H:%M:%S", time.localtime(at)) if at else "--:--:--"
        event = self.console.tr(f"event.{entry.get('event', '?')}")
        line = f"{when} {event}"
        if entry.get("step"):
            line += f" · {self.console.step_title(self.run, {'id': entry['step']})}"
        lang = self.console.tr.lang
        line += f" · {shown_name('actor', entry.get('actor', ''), lang)}"
        if entry.get("note"):
            line += f" — {entry['note']}"
        hidden = ("at", "event", "actor", "note", "step", "run")
        extra = {k: v for k, v in entry.items() if k not in hidden}
        if "title" in extra and self.incident:  # the engine's words: composed in the language
            extra["title"] = incident_title({**self.incident, "title": extra["title"]}, lang)
        if extra:
            line += " · " + " · ".join(pairs(extra.items(), lang))
        return line

    def _draw_run(self, now: float) -> None:
        tr, run = self.console.tr, self.run
        summary = self.query_one("#run-summary", Static)
        if run is None:
            allowed = self.allowed.may("start_playbook")
            summary.update(tr("incident.no_run" if allowed else "incident.no_run_ro"))
        else:
            drill = f" [{tr('run.drill')}]" if run.get("drill") else ""
            title = self.console.playbook_title(run)
            state = tr(f"run.{run.get('state')}")
            down = run.get("standing_down")
            state = tr("run.standing_down", reason=down["reason"]) if down else state
            summary.update(Text(f"{title}{drill} · {state} · {run.get('id')}"))
        self.query_one(StepTable).show(run, now)

    def tick(self, now: float) -> None:
        super().tick(now)
        now = self.console.board.server_now(now)
        self._draw_header(now)
        self.query_one(StepTable).show(self.run, now)

    # --- actions ----------------------------------------------------------------------

    def action_acknowledge(self) -> None:
        self.console.act("acknowledge", self.incident_id)

    def action_resolve(self) -> None:
        def done(note: str | None) -> None:
            if note is not None:
                self.console.act("resolve", self.incident_id, note=note)

        self.app.push_screen(NoteModal(self.console.tr("modal.note_for_resolve")), done)

    def action_add_note(self) -> None:
        def done(note: str | None) -> None:
            if note:
                self.console.act("add_note", self.incident_id, note=note)

        self.app.push_screen(NoteModal(self.console.tr("modal.note")), done)

    def _selected_step(self) -> tuple[str, str] | None:
        run, step = self.run, self.query_one(StepTable).cursor_key()
        if run is None:
            self.notify(self.console.tr("error.no_run"), severity="warning")
            return None
        if step is None:
            self.notify(self.console.tr("error.no_step"), severity="warning")
            return None
        return str(run["id"]), step

    def action_step_done(self) -> None:
        selected = self._selected_step()
        if selected is not None:
            self.console.act("step_done", *selected)

    def action_escalate(self) -> None:
        selected = self._selected_step()
        if selected is not None:
            self.console.act("escalate", *selected)

    def action_retry_step(self) -> None:
        """Send a step's failed action (a notification) again."""
        selected = self._selected_step()
        if selected is not None:
            self.console.act("retry_step", *selected)

    def action_approve(self) -> None:
        selected = self._selected_step()
        if selected is not None:
            self.console.act("approve", *selected)

    def action_start_playbook(self) -> None:
        def done(choice: tuple[str, bool] | None) -> None:
            if choice is not None:
                self.console.act("start_playbook", choice[0], self.incident_id, drill=choice[1])

        kind = (self.incident or {}).get("kind", "")
        library = list(self.console.playbooks.values())
        if library:
            self.app.push_screen(PlaybookPicker(self.console.tr, library, kind), done)
        else:  # an API without GET /v1/playbooks: ask for the id
            suggestion = FALLBACK_PLAYBOOKS.get(kind, "")
            self.app.push_screen(StartPlaybookModal(self.console.tr, suggestion), done)

    def action_silence(self) -> None:
        inc = self.incident or {}

        def done(request: SilenceRequest | None) -> None:
            if request is not None:
                self.console.act("silence", request.matchers, request.duration_s, request.reason)

        modal = SilenceModal(
            self.console.tr, str(inc.get("rule") or ""), str(inc.get("subject") or "")
        )
        self.app.push_screen(modal, done)

    def action_skip_step(self) -> None:
        selected = self._selected_step()
        if selected is None:
            return

        def done(note: str | None) -> None:
            if note is not None:
                self.console.act("skip_step", *selected, note=note or None)

        self.app.push_screen(
            NoteModal(self.console.tr("modal.skip_reason", step=selected[1])), done
        )

    def action_abort_run(self) -> None:
        run = self.run
        if run is None:
            self.notify(self.console.tr("error.no_run"), severity="warning")
            return

        def done(note: str | None) -> None:
            if note:
                self.console.act("abort_run", str(run["id"]), note=note)

        prompt = self.console.tr("modal.abort_reason", id=run["id"])
        self.app.push_screen(NoteModal(prompt), done)
