"""`watchfloor audit`: verify, tail and export the audit log."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "audit", "verify, tail and export the audit log", "the security issue")
