"""The board's small tables (incidents, runs), kept in sync with the model by row key.

(Dolphie's lesson; the queues, hundreds of rows, have their own line-drawn
widget in ``queue_board.py``.)

A change updates only the cells of its row (``update_cell``); rows are added
or removed only when the set of keys changes, and a full rebuild happens only
after a snapshot. Colours come from component classes styled in ``.tcss``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist, RowKey

from watchfloor.console import format as fmt
from watchfloor.console.i18n import Translator
from watchfloor.console.state import (
    BoardState,
    Dirty,
    overdue_steps,
    run_progress,
)
from watchfloor.console.titles import incident_title
from watchfloor.console.widgets.run_progress import progress_bar

LEVEL_CLASSES = {
    "level--ok",
    "level--warn",
    "level--breach",
    "level--stale",
    "sev--critical",
    "sev--major",
    "sev--minor",
    "sev--info",
    "state--open",
    "state--acknowledged",
    "state--resolved",
    "step--done",
    "step--late",
    "step--active",
}


class StyledTable(DataTable):
    """A DataTable whose cell colours come from CSS component classes.

    Every cell is a ``Text`` (a ``str`` would be parsed as markup on each
    render, and a queue named ``[b]x`` would be mangled).
    """

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | LEVEL_CLASSES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._styles: dict[str, Style] = {}

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def styled(self, text: str, cls: str | None = None) -> Text:
        if cls is None:
            return Text(text, end="")
        style = self._styles.get(cls)
        if style is None:
            style = self._styles[cls] = self.get_component_rich_style(cls, partial=True)
        return Text(text, style=style, end="")

    def lines_wanted(self) -> int:
        return self.row_count + 1

    def title_note(self) -> str:
        return ""

    def keys_in_order(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return str(key.value)

    def rebuild(self, rows: Iterable[tuple[str, list[Any]]]) -> None:
        """Replace all rows, keeping the cursor on the same key when it still exists."""
        keep = self.cursor_key()
        # Columns are added again so that their widths follow the new rows (they never shrink).
        labels = [(column.label, column.key.value) for column in self.columns.values()]
        self.clear(columns=True)
        for label, column_key in labels:
            self.add_column(label, key=column_key)
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keep is not None:
            with contextlib.suppress(RowDoesNotExist):
                self.move_cursor(row=self.get_row_index(keep), animate=False)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Textual (pinned 8.2.8) measures new rows when idle but keeps the lines it drew
        # before with the widths of the column labels: drop them once widths are known.
        super()._update_dimensions(new_rows)
        self._clear_caches()
        self.refresh()

    def set_row(self, key: str, cells: list[Any]) -> None:
        self.put_rows({key: cells})

    def put_rows(self, rows: dict[str, list[Any]]) -> None:
        """Write the cells of many rows, then repaint once (if anything changed).

        ``DataTable.update_cell`` repaints the table for every cell, which at
        thousands of cells a second is most of the console's CPU. Textual is
        pinned (8.2.8), so we write its row data and bump its update counter
        (which invalidates its row cache) once per batch instead.
        """
        changed = False
        for key, cells in rows.items():
            data = self._data.get(RowKey(key))
            if data is None:
                continue
            for column, value in zip(self.columns, cells, strict=False):
                if data.get(column) != value:
                    data[column] = value
                    changed = True
        if changed:
            self._update_count += 1
            self.refresh()


class IncidentTable(StyledTable):
    """Open incidents: severity, title, age, state, count; worst first."""

    title_width = 48
    """Cells of the title column (the board sets it from the tile's width)."""

    def fit_width(self, cells: int) -> bool:
        width = max(20, cells - 33)  # the other columns take 33 cells
        changed, self.title_width = width != self.title_width, width
        return changed

    def title_note(self) -> str:
        return f"({self.row_count})"

    def setup(self, tr: Translator) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (
            ("severity", "col.severity"),
            ("title", "col.title"),
            ("age", "col.age"),
            ("state", "col.state"),
            ("count", "col.count"),
        ):
            self.add_column(tr(label), key=key)

    def cells(self, inc: dict[str, Any], now: float) -> list[Any]:
        severity, state = inc.get("severity", "info"), inc.get("state", "open")
        t = self.styled
        return [
            t(self.tr(f"sev.{severity}"), f"sev--{severity}"),
            t(fmt.truncate(incident_title(inc, self.tr.lang), self.title_width)),
            t(fmt.age_coarse(inc.get("opened_at"), now, self.tr.lang).rjust(6)),
            t(self.tr(f"state.{state}"), f"state--{state}"),
            t(str(inc.get("count", 1)).rjust(3)),
        ]

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        now = state.server_now(now)
        wanted = state.open_incidents()
        keys = [str(i["id"]) for i in wanted]
        if dirty.reset or keys != self.keys_in_order():
            self.rebuild((str(i["id"]), self.cells(i, now)) for i in wanted)
            return
        self.put_rows({k: self.cells(state.incidents[k], now) for k in dirty.incident & set(keys)})

    def tick(self, state: BoardState, now: float) -> None:
        now = state.server_now(now)
        self.put_rows({k: self.cells(state.incidents[k], now) for k in self.keys_in_order()
                       if k in state.incidents})  # fmt: skip


class RunTable(StyledTable):
    """Active playbook runs: title, incident, progress, late steps."""

    title_width = 30
    """Cells of the playbook column (the board sets it from the tile's width)."""

    def fit_width(self, cells: int) -> bool:
        width = max(14, cells - 45)  # the other columns take 45 cells
        changed, self.title_width = width != self.title_width, width
        return changed

    def setup(self, tr: Translator) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (
            ("playbook", "col.playbook"),
            ("incident", "col.incident"),
            ("progress", "col.progress"),
            ("late", "col.overdue"),
        ):
            self.add_column(tr(label), key=key)

    def cells(self, run: dict[str, Any], now: float, subject: str = "") -> list[Any]:
        done, total = run_progress(run)
        late = overdue_steps(run, now)
        title = self.app.playbook_title(run)  # type: ignore[attr-defined]
        if run.get("drill"):
            title = f"[{self.tr('run.drill')}] {title}"
        step_title = self.app.step_title  # type: ignore[attr-defined]
        late_text = ", ".join(step_title(run, s) for s in late) or "—"
        t = self.styled
        return [
            t(fmt.truncate(title, self.title_width)),
            t(fmt.truncate(subject or str(run.get("incident") or ""), 20)),
            t(progress_bar(done, total)),
            t(fmt.truncate(late_text, 24), "step--late" if late else None),
        ]

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        now = state.server_now(now)
        wanted = state.active_runs()
        keys = [str(r["id"]) for r in wanted]
        if dirty.reset or keys != self.keys_in_order():
            self.rebuild((str(r["id"]), self.cells(r, now, _subject(state, r))) for r in wanted)
            return
        self.put_rows({k: self.cells(state.runs[k], now, _subject(state, state.runs[k]))
                       for k in dirty.run & set(keys)})  # fmt: skip

    def tick(self, state: BoardState, now: float) -> None:
        now = state.server_now(now)
        self.put_rows({k: self.cells(state.runs[k], now, _subject(state, state.runs[k]))
                       for k in self.keys_in_order()
                       if k in state.runs})  # fmt: skip


def _subject(state: BoardState, run: dict[str, Any]) -> str:
    """What the run's incident is about (``hotline``), when the board knows the incident."""
    incident = state.incidents.get(str(run.get("incident") or ""))
    return str((incident or {}).get("subject") or "")
