"""Every Redis key Watchfloor uses, in one place, all under the ``wf:`` prefix.

Modules never spell a key themselves: they call these helpers, so a rename or a
cluster hash-tag change happens here only.
"""

from __future__ import annotations

PREFIX = "wf:"

# Ingest ----------------------------------------------------------------------
EVENTS = "wf:events"
"""Stream of msgpack event batches (one entry = one batch)."""
EVENTS_GROUP = "monitor"
"""Consumer group the monitor reads ``EVENTS`` with."""
DEAD_LETTER = "wf:events:dead"
"""Stream of entries that failed processing too often."""
DEDUP_PREFIX = "wf:dedup:"
COLLECTORS = "wf:collectors"
"""Hash collector id -> msgpack ``{"written_until", "at"}``: every event the collector
acknowledged before ``written_until`` (its wall clock) is in the stream; ``at`` is when it
said so."""


def events_shard(n: int) -> str:
    """Events stream of shard ``n`` in a Redis Cluster (hash tag keeps it on one slot)."""
    return f"wf:events:{{{n}}}"


def dedup_bucket(source: str, bucket: int) -> str:
    """Set of the event ids one source sent in time bucket ``bucket`` (collector.dedup)."""
    return f"{DEDUP_PREFIX}{source}:{bucket}"


# Incidents and board -----------------------------------------------------------
INCIDENTS_OPEN = "wf:incidents:open"
"""Sorted set of open / acknowledged incident ids, scored by ``opened_at``."""
INCIDENTS_ALL = "wf:incidents:all"
"""Sorted set of every incident id, scored by ``opened_at``."""
INCIDENT_FINGERPRINTS = "wf:incidents:fp"
"""Hash ``rule|subject`` -> id of the incident currently open for that fingerprint."""
CHANGES = "wf:changes"
"""Stream of incident / run / queue-board / health changes (feeds ``/v1/live``)."""
QUEUES = "wf:queues"
"""Hash queue name -> msgpack snapshot of the queue board row."""
HEALTH = "wf:health"
"""Hash component or source -> msgpack health board row."""
FLAGS = "wf:flags"
"""Hash flag name -> msgpack ``{"value", "set_by", "at"}``."""
SILENCES = "wf:silences"
"""Hash silence id -> msgpack silence."""
ROSTER = "wf:roster"
"""msgpack roster (people, shifts, overrides) of ``watchfloor roster import``: who is on duty."""
HANDOVER_DRAFT = "wf:handover:draft"
"""msgpack ``{"notes", "suggestions", "author", "updated_at"}``: the outgoing duty manager's
words for the handover not yet signed."""
DUTY_LOG = "wf:dutylog"
"""Hash shift id -> msgpack signed handover (the duty log, 值班记录; mirrored as files)."""
ENGINE_CHECKPOINT = "wf:engine:checkpoint"
"""Engine window state + last processed stream id, written atomically."""
ENGINE_STATUS = "wf:engine:status"
"""Hash with the engine's watermark, lag and counters (for /healthz and the console)."""
SUPERVISOR = "wf:supervisor"
"""msgpack ``{"updated_at", "pid", "children": {name: {"state", ...}}}`` of ``up``'s
supervisor (TTL 30 s, refreshed every 5 s); ``/healthz`` reports crash loops from it."""
ENGINE_APPLIED = "wf:engine:applied"
"""Hash ``rule|subject`` -> last evaluation second whose action was applied (idempotence)."""
SEQ_INCIDENT = "wf:seq:incident"
INCIDENT_OUTBOX = "wf:incidents:outbox"
"""Hash ``incident_id|event`` -> msgpack follow-up work (audit, playbook hook) of an incident
write, written in the same transaction as the incident and deleted once done."""
INCIDENT_REOPEN = "wf:incidents:reopen"
"""Hash ``rule|subject`` -> ``incident_id|resolved_at`` of an engine incident a person resolved:
the engine reopens it (a linked incident) if the condition still holds after that."""


def incident(incident_id: str) -> str:
    return f"wf:incident:{incident_id}"


def incident_timeline(incident_id: str) -> str:
    """Stream of timeline entries of one incident (opened, updates, acks, notes, steps)."""
    return f"wf:incident:{incident_id}:timeline"


# Playbook runs -------------------------------------------------------------------
RUNS_ALL = "wf:runs:all"
"""Sorted set of run ids scored by start time."""
RUNS_ACTIVE = "wf:runs:active"
RUN_TIMERS = "wf:runs:timers"
"""Sorted set of ``run_id|step|kind|n`` timer members scored by due time."""
RUN_BY_INCIDENT = "wf:runs:by-incident"
"""Hash incident id -> run id (a playbook starts once per incident)."""
SEQ_RUN = "wf:seq:run"
RUN_EFFECTS = "wf:runs:effects"
"""Hash timer member ``run_id|step|fx|n`` -> msgpack side effect (audit, notify, action)."""
RUN_DRILLS = "wf:runs:drills"
"""Sorted set of finished drill run ids scored by finish time (their scores are on the run)."""


def run(run_id: str) -> str:
    return f"wf:run:{run_id}"


# Security --------------------------------------------------------------------------
TOKENS = "wf:tokens"
"""Hash sha256(token) hex -> msgpack token record."""
AUDIT = "wf:audit"
"""Stream of audit records."""
AUDIT_CHECKPOINTS = "wf:audit:checkpoints"
"""Stream of signed audit checkpoints."""
AUDIT_HEAD = "wf:audit:head"
"""Hash with ``seq`` and ``hash`` of the last audit record (chain head)."""
AUDIT_WITNESSED = "wf:audit:witnessed"
"""Hash witness name -> size of the last checkpoint it received."""
AUDIT_PROBLEMS = "wf:audit:problems"
"""Hash problem name (``integrity``, ``witness:file``...) -> JSON ``{"reason", "since", "seq"}``:
what keeps the audit from signing, mirroring or witnessing; shown by ``/healthz``."""
AUTH_FAILURES_PREFIX = "wf:authfail:"
SIGNATURE_REPLAY_PREFIX = "wf:sigreplay:"


def auth_failures(address: str) -> str:
    """Counter of recent failed authentications from one address."""
    return f"{AUTH_FAILURES_PREFIX}{address}"


def signature_replay(source: str) -> str:
    """Set of recently seen signed event ids of one source (replay cache)."""
    return f"{SIGNATURE_REPLAY_PREFIX}{source}"


# Paging ------------------------------------------------------------------------------
PAGING_CURSOR = "wf:paging:cursor"
"""Last ``wf:changes`` entry id the pager handled (it resumes there after a restart)."""
PAGING_DUE = "wf:paging:due"
"""Sorted set of incident ids scored by when their next escalation level is due."""
PAGING_ACK_USED_PREFIX = "wf:paging:ack-used:"


def page(incident_id: str) -> str:
    """msgpack paging state of one incident (level, severity, who was paged, acked)."""
    return f"wf:paging:page:{incident_id}"


def paging_ack_used(nonce: str) -> str:
    """Set (with the link's expiry) once an acknowledge link was used: each works once."""
    return f"{PAGING_ACK_USED_PREFIX}{nonce}"
