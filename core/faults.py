"""Named crash points for fault-injection tests of the services.

``WATCHFLOOR_FAULT_POINT=<name>`` makes the process exit at once (``os._exit``:
no cleanup, no final checkpoint, like a SIGKILL) the first time it reaches the
step of that name, so a test can prove that a crash exactly there loses
nothing. The variable is read once at import; unset (production), :func:`point`
is one comparison.
"""

from __future__ import annotations

import os
from typing import Final

ENV: Final = "WATCHFLOOR_FAULT_POINT"

MONITOR_POINTS: Final = (
    "after_incident_write",  # the incident and its outbox entry are in Redis, nothing else done
    "after_incident_followup",  # audit record and playbook done, the outbox entry not deleted
)

_ARMED: Final = os.environ.get(ENV) or None


def point(name: str) -> None:
    """Exit the process here if the fault point ``name`` is armed."""
    if _ARMED is not None and name == _ARMED:
        os.write(2, f"fault point reached: {name}\n".encode())
        os._exit(137)
