"""Which exceptions are the user's to fix, and how they are worded on the terminal."""

from __future__ import annotations

from watchfloor.core.config import ConfigError
from watchfloor.core.redis_server import RedisServerError


class CommandError(Exception):
    """A command failed in a way the user can fix; the message says how."""


USER_ERRORS: tuple[type[BaseException], ...] = (CommandError, ConfigError, RedisServerError)


def user_message(exc: BaseException) -> str | None:
    """One-line message for a known error, ``None`` for a bug (shown with its traceback)."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    return None
