"""`watchfloor playbook`: check, start and drill playbooks."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "playbook", "check, start and drill playbooks", "the playbooks issue")
