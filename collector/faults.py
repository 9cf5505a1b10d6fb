"""Named crash points for fault-injection tests of the ingest and replay paths.

``WATCHFLOOR_FAULT_POINT=<name>`` makes the collector process exit at once
(``os._exit``: no cleanup, like a SIGKILL) the first time it reaches the step
of that name, so a test can prove that a crash at any step loses no
acknowledged event and duplicates none. Unset (production), :func:`reach` is
one dictionary lookup done at import time and a comparison.
"""

from __future__ import annotations

import os
from typing import Final

ENV: Final = "WATCHFLOOR_FAULT_POINT"

INGEST_POINTS: Final = (
    "ingest.validated",  # the batch is validated, nothing written yet
    "ingest.written",  # the batch is in Redis (or the spool), the producer not yet answered
)
SPOOL_POINTS: Final = (
    "spool.appended",  # the batch is fsynced in the spool, the producer not yet answered
    "replay.read",  # spooled records read back, not yet written to Redis
    "replay.written",  # spooled records are in Redis, the replay offset not yet committed
    "replay.committed",  # the offset is committed, the spool not yet truncated
    "replay.truncated",  # the spool is emptied, direct writes not yet resumed
)
POINTS: Final = INGEST_POINTS + SPOOL_POINTS

_ARMED: Final = os.environ.get(ENV) or None


def reach(point: str) -> None:
    """Exit the process here if the fault point ``point`` is armed."""
    if point == _ARMED:
        os.write(2, f"fault point reached: {point}\n".encode())
        os._exit(137)
