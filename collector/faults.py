"""Named crash points for fault-injection tests of the ingest and replay paths.

``WATCHFLOOR_FAULT_POINT=<name>`` makes the collector process exit at once
(``os._exit``: no cleanup, like a SIGKILL) the first time it reaches the step
of that name, so a test can prove that a crash at any step loses no
acknowledged event and duplicates none. The mechanism is
:func:`core.faults.point`, shared with the monitor's points; this module names
the collector's steps.
"""

from __future__ import annotations

from typing import Final

from watchfloor.core.faults import ENV, point

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
SHARD_POINTS: Final = (
    # some shards' parts of a batch are in Redis, the others still to write (a part
    # held a duplicate: the rest of it goes in another round)
    "ingest.shard_written",
)
POINTS: Final = INGEST_POINTS + SHARD_POINTS + SPOOL_POINTS

__all__ = ["ENV", "POINTS", "reach"]


def reach(name: str) -> None:
    """Exit the process here if the fault point ``name`` is armed."""
    point(name)
