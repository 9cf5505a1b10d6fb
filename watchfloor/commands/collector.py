"""`watchfloor collector`: run the ingest service."""

from __future__ import annotations

from typing import Any

from watchfloor.commands.common import register_placeholder


def register(sub: Any) -> None:
    register_placeholder(sub, "collector", "run the ingest service", "the collector issue")
