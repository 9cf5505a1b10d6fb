"""The board's tiles, registered in one place (see :mod:`console.widgets.registry`).

Health is a one-line band on top. From 140 cells on, the queues and the active
playbooks share the left column and the open incidents take the whole right
one; below that they stack in ``order``. Lines nobody needs go to the incidents
(narrow) and to the runs (the left column).
"""

from __future__ import annotations

from watchfloor.console.widgets.health_strip import HealthStrip
from watchfloor.console.widgets.queue_board import QueueBoard
from watchfloor.console.widgets.registry import TileRegistry, TileSpec
from watchfloor.console.widgets.tables import IncidentTable, RunTable

BOARD_TILES = TileRegistry(
    (
        TileSpec(
            name="health",
            make=HealthStrip,
            title_key="tile.health",
            feeds=frozenset({"health", "flags", "engine"}),
            order=0,
            wide="strip",
            strip_lines=(3, 2),
        ),
        TileSpec(
            name="queues",
            make=QueueBoard,
            title_key="tile.queues",
            feeds=frozenset({"queue"}),
            order=10,
            wide="left",
            room=2,
        ),
        TileSpec(
            name="incidents",
            make=IncidentTable,
            title_key="tile.incidents",
            feeds=frozenset({"incident"}),
            order=20,
            wide="right",
            room=0,
        ),
        TileSpec(
            name="runs",
            make=RunTable,
            title_key="tile.runs",
            feeds=frozenset({"run"}),
            order=30,
            wide="left",
            room=1,
        ),
    )
)
"""Every tile of the board, in board order."""
