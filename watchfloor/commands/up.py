"""`watchfloor up`: run the whole stack."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "up", "run the whole stack", "the up issue")
