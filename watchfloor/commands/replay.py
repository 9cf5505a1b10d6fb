"""`watchfloor replay`: replay a recorded day through the engine."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "replay", "replay a recorded day through the engine", "the rule engine issue")
