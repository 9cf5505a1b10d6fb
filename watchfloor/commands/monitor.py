"""`watchfloor monitor`: run the rule engine and API."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "monitor", "run the rule engine and API", "the rule engine issue")
