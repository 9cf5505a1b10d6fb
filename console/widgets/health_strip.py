"""The health strip: components up / degraded / down and lost heartbeats, in one line."""

from __future__ import annotations

import contextlib
import json
from typing import Any, ClassVar

from rich.text import Text
from textual.widgets import Static

from watchfloor.console.i18n import Translator
from watchfloor.console.names import shown_name
from watchfloor.console.state import BoardState, Dirty
from watchfloor.console.widgets.registry import TileDefaults

STATUS_ORDER = {"down": 0, "lost": 1, "degraded": 2, "up": 3}
MAX_NAMED = 3


class HealthStrip(TileDefaults, Static):
    """Counts first, then the subjects that are not up, worst first."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "health--up",
        "health--degraded",
        "health--down",
        "health--lost",
    }
    DEFAULT_CSS = "HealthStrip { height: auto; max-height: 3; padding: 0 1; }"

    # --- the board's tile protocol (console.widgets.registry.BoardTile) ---------------

    def setup(self, tr: Translator) -> None:
        self._tr = tr

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        self.show(state.health, self._tr, state.flags, state.engine)

    def show(
        self,
        rows: dict[str, dict[str, Any]],
        tr: Translator,
        flags: dict[str, Any] | None = None,
        engine: dict[str, Any] | None = None,
    ) -> None:
        counts = {"up": 0, "degraded": 0, "down": 0, "lost": 0}
        for row in rows.values():
            status = row.get("status", "down")
            counts[status if status in counts else "down"] += 1
        text = Text()
        for status, label in (
            ("up", "health.up"),
            ("degraded", "health.degraded"),
            ("down", "health.down"),
            ("lost", "health.lost"),
        ):
            style = self.get_component_rich_style(f"health--{status}", partial=True)
            text.append(f"{counts[status]} {tr(label)}", style=style)
            text.append("  ")
        bad = sorted(
            (r for r in rows.values() if r.get("status") != "up"),
            key=lambda r: (STATUS_ORDER.get(r.get("status", ""), 0), r.get("subject")),
        )
        for row in bad:
            status = row.get("status", "down")
            style = self.get_component_rich_style(
                f"health--{status if status in counts else 'down'}", partial=True
            )
            text.append(f"▪{row.get('subject')}", style=style)
            text.append(" ")
        self._tail(text, tr, flags or {}, engine or {})
        self.update(text)

    def _tail(
        self, text: Text, tr: Translator, flags: dict[str, Any], engine: dict[str, Any]
    ) -> None:
        """Engine lag and the flags playbooks set (``auto_reply=on``), after the health."""
        lag = engine.get("lag_s")
        if lag is not None:
            with contextlib.suppress(TypeError, ValueError):
                text.append(f" │ {tr('health.engine_lag')} {float(lag):.1f}s")
        self._unplaced(text, tr, engine)
        on = [_flag(flag, v, tr.lang) for flag, v in sorted(flags.items())]
        if on:
            text.append(f" │ {tr('health.flags')}: " + " ".join(on))

    def _unplaced(self, text: Text, tr: Translator, engine: dict[str, Any]) -> None:
        """Events the engine could not place in time, worst sources first (never silent)."""
        total = engine.get("unplaced_total")
        if not isinstance(total, int) or total <= 0:
            return
        sources = _unplaced_sources(engine.get("unplaced"))
        named = ", ".join(f"{s} {n}" for s, n in sources[:MAX_NAMED])
        style = self.get_component_rich_style("health--degraded", partial=True)
        text.append(f" │ {tr('health.unplaced')} {total}", style=style)
        if named:
            text.append(f" ({named})", style=style)


def _unplaced_sources(raw: Any) -> list[tuple[str, int]]:
    """``[(source, events)]`` from the status' JSON ``{source: {reason: n}}``, most first."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    counts = [
        (str(source), sum(n for n in reasons.values() if isinstance(n, int)))
        for source, reasons in data.items()
        if isinstance(reasons, dict)
    ]
    return sorted(counts, key=lambda sn: (-sn[1], sn[0]))


def _flag(flag: str, value: Any, lang: str) -> str:
    """``auto_reply=on``; in Chinese ``自动回复=开``."""
    shown = (value or {}).get("value") if isinstance(value, dict) else value
    return f"{shown_name('flag', flag, lang)}={shown_name('flag_value', shown, lang)}"
