"""When one active run already covers a new incident, so that no second playbook starts.

A queue in trouble opens a surge incident and an SLA incident; a component
that degrades and loses its heartbeat may open two outage incidents on one
subject. One problem needs one emergency plan worked by one on-call person, so
the runner's auto-start links such an incident to the run already active on
the same subject instead of starting another playbook (:func:`covering_run`).

Whether a run covers an incident depends on the kinds of both. A run started
for a contact surge covers the SLA breaches of its queue (the surge playbook
already calls in agents and turns on auto-reply); a run started for an SLA
breach covers further SLA incidents but not a surge, whose playbook does more
(auto-reply, overflow queue, a public notice), so a surge that follows an SLA
breach still starts its own. Outages are covered only by an outage run of the
same subject, opinion incidents by an opinion run of the same topic; a data
leak never merges with anything (each one is contained, assessed and reported
on its own), nor does a manual incident. Starting a run by hand is not affected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from watchfloor.playbooks.model import Run

COVERS: Final[Mapping[str, frozenset[str]]] = {
    "surge": frozenset({"surge", "sla"}),
    "sla": frozenset({"sla"}),
    "outage": frozenset({"outage"}),
    "opinion": frozenset({"opinion"}),
}
"""Kind of the incident a run was started for -> kinds of incident that run also covers."""


def covers(run_kind: str, incident_kind: str) -> bool:
    """Whether a run started for a ``run_kind`` incident covers an ``incident_kind`` one."""
    return incident_kind in COVERS.get(run_kind, frozenset())


def covering_run(runs: Iterable[Run], incident_id: str, kind: str, subject: str) -> Run | None:
    """The oldest active run (not a drill) on ``subject`` for the same problem, if any."""
    found = [
        run
        for run in runs
        if run.state == "active"
        and not run.drill
        and run.incident not in (None, incident_id)
        and run.values.get("subject") == subject
        and covers(run.values.get("kind", ""), kind)
    ]
    return min(found, key=lambda r: (r.started_at, r.id)) if found else None
