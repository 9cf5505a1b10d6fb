"""Every Redis key Watchfloor uses, in one place.

Modules never spell a key themselves: they call these helpers, so a rename or a
cluster hash-tag change happens here only.

Two families, so that every ``MULTI`` and every Lua script stays in one hash slot
of a Redis Cluster (on a single Redis the tags are just part of the names):

- the **control plane** (incidents, runs, audit, tokens, board, leases of the
  singleton tasks...) shares the hash tag ``{wf}``: written together, kept on one
  slot, so one master holds it (docs/operators.md says where that stops scaling);
- each **events shard** ``N`` has its stream, consumer group, checkpoint, status,
  dead letters, duplicate marks and lease under the hash tag ``{N}``
  (``wf:events:{N}``...), so a shard's commit is one transaction on its node.
"""

from __future__ import annotations

PREFIX = "{wf}:"
"""Control-plane keys: one hash tag, one slot."""

# Ingest: one family of keys per events shard ----------------------------------------
EVENTS_GROUP = "monitor"
"""Consumer group the monitor workers read every shard's stream with."""
SHARDS = "{wf}:shards"
"""The number of events shards this Redis was set up with (written once; a process
configured with another count refuses to start rather than re-shard silently)."""
COLLECTORS = "{wf}:collectors"
"""Hash collector id -> msgpack ``{"written_until", "at"}``: every event the collector
acknowledged before ``written_until`` (its wall clock) is in the stream; ``at`` is when it
said so."""


def events_shard(n: int) -> str:
    """Stream of msgpack event batches of shard ``n`` (one entry = one batch)."""
    return f"wf:events:{{{n}}}"


def dead_letter(n: int) -> str:
    """Stream of shard ``n``'s entries that failed processing too often."""
    return f"wf:events:dead:{{{n}}}"


def dedup_bucket(n: int, source: str, bucket: int) -> str:
    """Set of the event ids one source sent to shard ``n`` in time bucket ``bucket``."""
    return f"wf:dedup:{{{n}}}:{source}:{bucket}"


def engine_checkpoint(n: int) -> str:
    """Shard ``n``'s engine state + last processed stream id, written atomically."""
    return f"wf:engine:checkpoint:{{{n}}}"


def engine_status(n: int) -> str:
    """Hash with shard ``n``'s watermark, lag and counters (``core.engine_status`` sums them)."""
    return f"wf:engine:status:{{{n}}}"


def shard_lease(n: int) -> str:
    """Worker id holding shard ``n`` (set with an expiry, renewed by its holder)."""
    return f"wf:lease:{{{n}}}"


# Incidents and board -----------------------------------------------------------
INCIDENTS_OPEN = "{wf}:incidents:open"
"""Sorted set of open / acknowledged incident ids, scored by ``opened_at``."""
INCIDENTS_ALL = "{wf}:incidents:all"
"""Sorted set of every incident id, scored by ``opened_at``."""
INCIDENT_FINGERPRINTS = "{wf}:incidents:fp"
"""Hash ``rule|subject`` -> id of the incident currently open for that fingerprint."""
CHANGES = "{wf}:changes"
"""Stream of incident / run / queue-board / health changes (feeds ``/v1/live``)."""
QUEUES = "{wf}:queues"
"""Hash queue name -> msgpack snapshot of the queue board row."""
HEALTH = "{wf}:health"
"""Hash component or source -> msgpack health board row."""
FLAGS = "{wf}:flags"
"""Hash flag name -> msgpack ``{"value", "set_by", "at"}``."""
SILENCES = "{wf}:silences"
"""Hash silence id -> msgpack silence."""
ROSTER = "{wf}:roster"
"""msgpack roster (people, shifts, overrides) of ``watchfloor roster import``: who is on duty."""
HANDOVER_DRAFT = "{wf}:handover:draft"
"""msgpack ``{"notes", "suggestions", "author", "updated_at"}``: the outgoing duty manager's
words for the handover not yet signed."""
DUTY_LOG = "{wf}:dutylog"
"""Hash shift id -> msgpack signed handover (the duty log, 值班记录; mirrored as files)."""
WORKERS = "{wf}:workers"
"""Hash worker id -> msgpack ``{"pid", "host", "instance", "beat", "shards"}`` of the
monitor workers (a worker's entry older than a lease period is a dead worker's)."""


def task_lease(name: str) -> str:
    """Holder of a task that runs once in the cluster (``timers``, ``pager``, ``audit``)."""
    return f"{PREFIX}lease:task:{name}"


def worker_instance(worker_id: str) -> str:
    """Instance nonce of the live process using ``worker_id`` (a second one refuses)."""
    return f"{PREFIX}worker:{worker_id}"


SUPERVISOR = "{wf}:supervisor"
"""msgpack ``{"updated_at", "pid", "children": {name: {"state", ...}}}`` of ``up``'s
supervisor (TTL 30 s, refreshed every 5 s); ``/healthz`` reports crash loops from it."""
ENGINE_APPLIED = "{wf}:engine:applied"
"""Hash ``shard|rule|subject`` -> last evaluation second whose action was applied
(idempotence), per shard: two shards may judge one fingerprint (a channel's queues)."""
SEQ_INCIDENT = "{wf}:seq:incident"
INCIDENT_OUTBOX = "{wf}:incidents:outbox"
"""Hash ``incident_id|event`` -> msgpack follow-up work (audit, playbook hook) of an incident
write, written in the same transaction as the incident and deleted once done."""
INCIDENT_REOPEN = "{wf}:incidents:reopen"
"""Hash ``rule|subject`` -> ``incident_id|resolved_at`` of an engine incident a person resolved:
the engine reopens it (a linked incident) if the condition still holds after that."""


def cap_counter(rule: str, minute: int) -> str:
    """New incidents ``rule`` opened in ``minute`` (epoch minutes), over every shard."""
    return f"{PREFIX}cap:{rule}:{minute}"


def capped_subjects(rule: str) -> str:
    """Set of subjects of ``rule`` rolled up past the incident cap (until they clear)."""
    return f"{PREFIX}capped:{rule}"


def incident(incident_id: str) -> str:
    return f"{{wf}}:incident:{incident_id}"


def incident_timeline(incident_id: str) -> str:
    """Stream of timeline entries of one incident (opened, updates, acks, notes, steps)."""
    return f"{{wf}}:incident:{incident_id}:timeline"


# Playbook runs -------------------------------------------------------------------
RUNS_ALL = "{wf}:runs:all"
"""Sorted set of run ids scored by start time."""
RUNS_ACTIVE = "{wf}:runs:active"
RUN_TIMERS = "{wf}:runs:timers"
"""Sorted set of ``run_id|step|kind|n`` timer members scored by due time."""
RUN_BY_INCIDENT = "{wf}:runs:by-incident"
"""Hash incident id -> run id (a playbook starts once per incident)."""
SEQ_RUN = "{wf}:seq:run"
RUN_EFFECTS = "{wf}:runs:effects"
"""Hash timer member ``run_id|step|fx|n`` -> msgpack side effect (audit, notify, action)."""
RUN_DRILLS = "{wf}:runs:drills"
"""Sorted set of finished drill run ids scored by finish time (their scores are on the run)."""


def run(run_id: str) -> str:
    return f"{{wf}}:run:{run_id}"


# Security --------------------------------------------------------------------------
TOKENS = "{wf}:tokens"
"""Hash sha256(token) hex -> msgpack token record."""
AUDIT = "{wf}:audit"
"""Stream of audit records."""
AUDIT_CHECKPOINTS = "{wf}:audit:checkpoints"
"""Stream of signed audit checkpoints."""
AUDIT_HEAD = "{wf}:audit:head"
"""Hash with ``seq`` and ``hash`` of the last audit record (chain head)."""
AUDIT_WITNESSED = "{wf}:audit:witnessed"
"""Hash witness name -> size of the last checkpoint it received."""
AUDIT_PROBLEMS = "{wf}:audit:problems"
"""Hash problem name (``integrity``, ``witness:file``...) -> JSON ``{"reason", "since", "seq"}``:
what keeps the audit from signing, mirroring or witnessing; shown by ``/healthz``."""
AUTH_FAILURES_PREFIX = "{wf}:authfail:"
SIGNATURE_REPLAY_PREFIX = "{wf}:sigreplay:"


def auth_failures(address: str) -> str:
    """Counter of recent failed authentications from one address."""
    return f"{AUTH_FAILURES_PREFIX}{address}"


def signature_replay(source: str) -> str:
    """Set of recently seen signed event ids of one source (replay cache)."""
    return f"{SIGNATURE_REPLAY_PREFIX}{source}"


# Paging ------------------------------------------------------------------------------
PAGING_CURSOR = "{wf}:paging:cursor"
"""Last ``wf:changes`` entry id the pager handled (it resumes there after a restart)."""
PAGING_DUE = "{wf}:paging:due"
"""Sorted set of incident ids scored by when their next escalation level is due."""
PAGING_ACK_USED_PREFIX = "{wf}:paging:ack-used:"


def page(incident_id: str) -> str:
    """msgpack paging state of one incident (level, severity, who was paged, acked)."""
    return f"{{wf}}:paging:page:{incident_id}"


def paging_ack_used(nonce: str) -> str:
    """Set (with the link's expiry) once an acknowledge link was used: each works once."""
    return f"{PAGING_ACK_USED_PREFIX}{nonce}"
