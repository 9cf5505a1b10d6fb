"""`watchfloor console`: open the duty console."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "console", "open the duty console", "the console issue")
