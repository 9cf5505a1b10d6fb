"""`watchfloor rules`: check rule files."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "rules", "check rule files", "the rule engine issue")
