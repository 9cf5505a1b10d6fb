"""`watchfloor keys`: manage signing and encryption keys."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "keys", "manage signing and encryption keys", "the security issue")
