"""The board's tile registry: which tiles the board shows, where, and what feeds them.

Dolphie's lesson (a registry of panels): the board screen knows no tile by
name. Each entry says the tile's order, its placement on wide and narrow
terminals, which slices of :class:`~console.state.BoardState` feed it (the
fields of :class:`~console.state.Dirty`), its freshness source and its title
key; the widget itself speaks :class:`BoardTile`. A new tile is one widget, one
:func:`register` call below, its i18n strings and its CSS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from textual.widget import Widget

from watchfloor.console.i18n import Translator
from watchfloor.console.state import BoardState, Dirty

Placement = Literal["strip", "left", "right"]
"""``strip``: a fixed-height band above the grid, full width; ``left``/``right``: the column
the tile takes from 140 cells on (below that every grid tile stacks in ``order``)."""
FEEDS = frozenset({"incident", "queue", "health", "run", "flags", "engine"})


@runtime_checkable
class BoardTile(Protocol):
    """What the board asks of a tile's widget."""

    def setup(self, tr: Translator) -> None:
        """Build headings in the interface's language (once, when mounted)."""

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        """Bring the widget up to date with the rows ``dirty`` names (all on ``reset``)."""

    def tick(self, state: BoardState, now: float) -> None:
        """Once a second: ages, staleness, time-dependent sorting."""

    def lines_wanted(self) -> int:
        """Lines the content needs to show every row (heading included), border excluded."""

    def fit_width(self, cells: int) -> bool:
        """The tile's inner width changed to ``cells``; True when the rows must be redrawn."""

    def title_note(self) -> str:
        """Text after the title (``(3)``), or ``""``."""


class TileDefaults:
    """The :class:`BoardTile` answers of a tile with nothing to age, fit or count.

    Mixed in before the Textual base (``class Mine(TileDefaults, Static)``): a
    simple tile then writes only ``setup`` and ``sync``.
    """

    def tick(self, state: BoardState, now: float) -> None:
        """Nothing ages here: the tile's title already says how old its data is."""

    def lines_wanted(self) -> int:
        return 1

    def fit_width(self, cells: int) -> bool:
        return False

    def title_note(self) -> str:
        return ""


@dataclass(frozen=True)
class TileSpec:
    """One board tile: the widget ``#{name}`` inside the tile ``#tile-{name}``."""

    name: str
    make: Callable[[], Widget]
    """Builds the widget (called with no arguments; the board gives it its id)."""
    title_key: str
    """The i18n key of the tile's title."""
    feeds: frozenset[str]
    """The :class:`~console.state.Dirty` fields whose changes call the widget's ``sync``."""
    order: int
    """Position on the board: top to bottom when narrow, and within a column when wide."""
    wide: Placement
    room: int = 9
    """Who gets the lines nobody needs: the grid row holding the lowest ``room``."""
    strip_lines: tuple[int, int] = (3, 2)
    """Height of a ``strip`` tile, wide and narrow (border included)."""
    freshness: str | None = None
    """Which :meth:`BoardState.tile_age` source dates the tile (default: ``name``)."""

    @property
    def tile_id(self) -> str:
        return f"tile-{self.name}"

    @property
    def age_source(self) -> str:
        return self.freshness or self.name


class TileRegistry:
    """The tiles in board order; a test may build its own and hand it to the board."""

    def __init__(self, specs: tuple[TileSpec, ...] = ()) -> None:
        self._specs: dict[str, TileSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: TileSpec) -> TileSpec:
        if spec.name in self._specs:
            raise ValueError(f"tile {spec.name!r} is registered twice")
        unknown = spec.feeds - FEEDS
        if unknown:
            raise ValueError(f"tile {spec.name!r}: feeds {sorted(unknown)} are not board slices")
        self._specs[spec.name] = spec
        return spec

    def copy(self) -> TileRegistry:
        return TileRegistry(tuple(self._specs.values()))

    def all(self) -> list[TileSpec]:
        return sorted(self._specs.values(), key=lambda s: s.order)

    def strips(self) -> list[TileSpec]:
        return [s for s in self.all() if s.wide == "strip"]

    def grid(self) -> list[TileSpec]:
        return [s for s in self.all() if s.wide != "strip"]

    def column(self, side: Placement) -> list[TileSpec]:
        return [s for s in self.all() if s.wide == side]
