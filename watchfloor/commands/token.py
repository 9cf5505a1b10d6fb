"""`watchfloor token`: create, list and revoke API tokens."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "token", "create, list and revoke API tokens", "the security issue")
