"""One log line when a dependency (Redis) goes away and one when it is back, not one a request.

During an outage every request fails the same way; a line (or a traceback) for
each of them buries the one fact an operator needs. An :class:`OutageLog` is
kept per application (the auth gate makes it, under :data:`REDIS_OUTAGE`): the
first failure logs a WARNING, later ones only DEBUG, and the first success
after that logs how long it lasted.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from aiohttp import web

__all__ = ["REDIS_OUTAGE", "OutageLog"]


class OutageLog:
    """Logs the state changes of one dependency: down (with the first error), back."""

    def __init__(self, logger: logging.Logger, what: str = "redis") -> None:
        self.logger = logger
        self.what = what
        self.down_since: float | None = None
        self.failures = 0

    def failed(self, exc: BaseException, doing: str) -> None:
        """A call failed because the dependency is unreachable."""
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.logger.warning("%s unavailable while %s error=%s (logged once until it is back)",
                                self.what, doing, exc)  # fmt: skip
        else:
            self.logger.debug("%s still unavailable while %s error=%s", self.what, doing, exc)

    def ok(self) -> None:
        """A call succeeded: log the end of an outage, if there was one."""
        if self.down_since is None:
            return
        lasted = time.monotonic() - self.down_since
        self.logger.warning("%s back after %.1f s, %d failed calls", self.what, lasted,
                            self.failures)  # fmt: skip
        self.down_since, self.failures = None, 0


REDIS_OUTAGE: Final = web.AppKey("wf_redis_outage", OutageLog)
"""The application's Redis outage log (set by ``security.auth.setup_auth``)."""
