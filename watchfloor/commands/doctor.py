"""`watchfloor doctor`: check that everything up needs works."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "doctor", "check that everything up needs works", "the foundation issue")
