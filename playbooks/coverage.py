"""When one active run already covers a new incident, so that no second playbook starts.

A queue in trouble opens a surge incident and an SLA incident; a component
that degrades and loses its heartbeat may open two outage incidents on one
subject. One problem needs one emergency plan worked by one on-call person, so
the runner's auto-start links such an incident to the run already active on
the same subject instead of starting another playbook (:func:`covering_run`).

Whether two incidents are the same problem depends on their *nature*, given by
their kind: a surge and an SLA breach of one queue are (``queue``); outages
merge only with outages of the same subject (``outage``); opinion incidents of
one topic are one public-opinion event (``opinion``); a data leak never merges
with anything (each one is contained, assessed and reported on its own), nor
does a manual incident. Starting a run by hand is not affected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

NATURE: Final[Mapping[str, str]] = {
    "surge": "queue",
    "sla": "queue",
    "outage": "outage",
    "opinion": "opinion",
}
"""Incident kind -> nature; kinds absent here (leak, manual) never merge."""


def same_problem(kind_a: str, kind_b: str) -> bool:
    """Whether incidents of these kinds on one subject are one problem (one run)."""
    nature = NATURE.get(kind_a)
    return nature is not None and nature == NATURE.get(kind_b)


def covering_run(
    runs: Iterable[Mapping[str, Any]], incident_id: str, kind: str, subject: str
) -> Mapping[str, Any] | None:
    """The oldest active run (not a drill) on ``subject`` for the same problem, if any."""
    found = [
        run
        for run in runs
        if run.get("state") == "active"
        and not run.get("drill")
        and run.get("incident") not in (None, incident_id)
        and run.get("values", {}).get("subject") == subject
        and same_problem(kind, run.get("values", {}).get("kind", ""))
    ]
    return min(found, key=lambda r: (r["started_at"], r["id"])) if found else None
