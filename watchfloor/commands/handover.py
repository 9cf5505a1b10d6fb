"""`watchfloor handover`: write the shift handover report."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "handover", "write the shift handover report", "the playbooks issue")
