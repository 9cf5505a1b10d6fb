"""`watchfloor simulate`: produce realistic traffic."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "simulate", "produce realistic traffic", "the collector issue")
