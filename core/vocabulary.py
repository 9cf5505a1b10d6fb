"""Watchfloor's vocabulary: the one place that names severities, incident kinds, channels
(with the source documents' service-level defaults), event enums and run/step states.

Every other module imports these names; a literal copy anywhere else fails
``tests/core/test_vocabulary.py`` (the drift test), because copies drift: the social
channel's answer threshold had become 1800 s on the queue board and 3600 s in the rules.

Detectors: the SLA detector's per-channel defaults (``longest_wait_s``, ``aht_s``,
``stale_s``) must come from :data:`CHANNEL_SLA` here, and the incident kinds a detector
may declare from :data:`ENGINE_KINDS`; ``monitor/rules/default.toml`` (generated or
hand-written) must carry the same figures, which the drift test checks.

Figures are those of /work/shared/SEEDS.md (the seed documents 000-004):

- chat: first reply within 30 s (001 §1.4; 003 ch.5 §2 allows 1 min: the stricter is the
  default), complex questions within 5 min;
- phone: answered within 3 rings, about 15 s (003 ch.5 §2);
- email: replied within 24 h (003 ch.5 §2);
- ticket: first response within 24 h (000 §1.3, any channel);
- social: the documents name social media as a channel (003 ch.5 §1) but give it no
  figure of its own; the only one that covers it is 000 §1.3's 24 h for any channel. Public
  posts are seen by everyone and feed opinion storms (001 §7.4), so the default is 1 h
  (3600 s, the rules' long-standing convention), well inside that 24 h cap; the 1800 s the
  queue board carried had no source and was the drifted copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

# --- severities ------------------------------------------------------------------------

Severity = Literal["info", "minor", "major", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "minor", "major", "critical")
"""Severities from lowest to highest: the index is the rank."""
SEVERITY_RANK: Final[Mapping[str, int]] = MappingProxyType({s: r for r, s in enumerate(SEVERITIES)})


def severity_rank(severity: str) -> int:
    """0 for ``info`` .. 3 for ``critical``; ValueError naming the word otherwise."""
    try:
        return SEVERITY_RANK[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}: one of {', '.join(SEVERITIES)}") from None


# --- incidents -------------------------------------------------------------------------

IncidentKind = Literal["surge", "sla", "outage", "opinion", "leak", "integrity", "manual"]
INCIDENT_KINDS: Final[tuple[IncidentKind, ...]] = (
    "surge",
    "sla",
    "outage",
    "opinion",
    "leak",
    "integrity",
    "manual",
)
"""Every incident kind. ``integrity``: the audit log forked or was rewritten (opened by the
audit task); ``manual``: opened by a person through the API."""
ENGINE_KINDS: Final[tuple[IncidentKind, ...]] = ("surge", "sla", "outage", "opinion", "leak")
"""Kinds the rule engine's detectors open (a rules file may name only these)."""
AUTO_RESOLVE_KINDS: Final[tuple[IncidentKind, ...]] = ("surge", "sla", "outage")
"""Kinds the engine resolves itself when their condition clears (rules' ``auto_resolve``
default); a person's resolve of the other kinds is final."""
INCIDENT_STATES: Final = ("open", "acknowledged", "resolved")
"""An incident's life: open -> acknowledged -> resolved."""

# --- channels and their service-level defaults -------------------------------------------

Channel = Literal["phone", "chat", "email", "social", "ticket"]


@dataclass(frozen=True, slots=True)
class ChannelSla:
    """A channel's service-level defaults (seconds) and where each figure comes from."""

    name: Channel
    answer_s: float
    """First answer / reply threshold: the SLA rule's ``longest_wait_s`` and the board's."""
    source: str
    """The seed document (or convention) that sets ``answer_s``."""
    aht_s: float
    """Average handle time for the Erlang C forecast when contacts give none (convention)."""
    stale_s: float | None = None
    """A queue snapshot older than this is not judged; None: the rules' general figure."""
    complex_answer_s: float | None = None
    """Threshold for complex questions, where a document gives one."""


CHANNELS: Final[tuple[Channel, ...]] = ("phone", "chat", "email", "social", "ticket")
CHANNEL_SLA: Final[Mapping[str, ChannelSla]] = MappingProxyType(
    {
        "phone": ChannelSla("phone", 15.0, "003 ch.5 §2: answer within 3 rings (≈ 15 s)", 240.0),
        "chat": ChannelSla(
            "chat",
            30.0,
            "001 §1.4: first reply within 30 s (003 ch.5 §2: 1 min)",
            420.0,
            complex_answer_s=300.0,
        ),
        "email": ChannelSla("email", 86_400.0, "003 ch.5 §2: reply within 24 h", 600.0, 3600.0),
        "social": ChannelSla(
            "social", 3_600.0, "convention: public posts within 1 h (000 §1.3 caps at 24 h)", 300.0
        ),
        "ticket": ChannelSla(
            "ticket", 86_400.0, "000 §1.3: first response within 24 h (any channel)", 600.0, 3600.0
        ),
    }
)
"""Per channel, in :data:`CHANNELS` order."""
SLA_ANSWER_S: Final[Mapping[str, float]] = MappingProxyType(
    {c: CHANNEL_SLA[c].answer_s for c in CHANNELS}
)
"""Channel -> first-answer threshold in seconds (the board's and the console's fallback)."""
DEFAULT_ANSWER_S: Final = 30.0
"""Threshold for a queue whose channel names none of the above (the rules' fallback)."""
SERVICE_LEVEL_TARGET: Final = 0.8
"""Share answered within the threshold: the 80/20 convention (the documents give thresholds)."""
SATISFACTION_TARGET: Final = 0.95
"""001 §1.1, §1.4: duty staff >= 95 %."""
SATISFACTION_FLOOR: Final = 0.90
"""001 §1.4: a platform's yearly target 90 %; below it is major."""
CSAT_SATISFIED_FROM: Final = 4
"""A ``csat`` rating (1-5) of at least this counts as satisfied (the usual CSAT reading)."""

# --- event enums (the event contract) ------------------------------------------------------

ContactAction = Literal["offered", "answered", "abandoned", "completed"]
CONTACT_ACTIONS: Final[tuple[ContactAction, ...]] = (
    "offered",
    "answered",
    "abandoned",
    "completed",
)
HealthStatus = Literal["up", "degraded", "down"]
HEALTH_STATUSES: Final[tuple[HealthStatus, ...]] = ("up", "degraded", "down")
Direction = Literal["to_customer", "from_customer", "internal"]
DIRECTIONS: Final[tuple[Direction, ...]] = ("to_customer", "from_customer", "internal")
AccessAction = Literal["view", "search", "export", "download", "print", "delete"]
ACCESS_ACTIONS: Final[tuple[AccessAction, ...]] = (
    "view",
    "search",
    "export",
    "download",
    "print",
    "delete",
)
ComplaintAction = Literal["opened", "customer_told", "resolved"]
COMPLAINT_ACTIONS: Final[tuple[ComplaintAction, ...]] = ("opened", "customer_told", "resolved")
"""A complaint's life (003 ch.5 §4): opened -> customer_told (the customer hears how it
stands and, optionally, a new promised time; any number of times) -> resolved."""
LogisticsAction = Literal["reported", "solution_offered", "resolved"]
LOGISTICS_ACTIONS: Final[tuple[LogisticsAction, ...]] = ("reported", "solution_offered", "resolved")
"""A logistics-delay case (001 §1.1): reported -> solution_offered (re-ship, refund,
compensation, a new delivery date) -> resolved."""
OrderAction = Literal[
    "refund", "refund_only", "address_change", "cancel", "price_change", "compensation", "other"
]
ORDER_ACTIONS: Final[tuple[OrderAction, ...]] = (
    "refund",
    "refund_only",
    "address_change",
    "cancel",
    "price_change",
    "compensation",
    "other",
)
"""Changes to an order made by (or through) the service desk; ``refund_only``: money back
without the goods returned (仅退款), the refund most often abused."""

# --- playbook runs -----------------------------------------------------------------------

RunState = Literal["active", "completed", "aborted"]
RUN_STATES: Final[tuple[RunState, ...]] = ("active", "completed", "aborted")
"""A run: active -> completed (every step done or skipped) | aborted."""
FINISHED_RUN_STATES: Final[tuple[RunState, ...]] = ("completed", "aborted")
StepState = Literal["pending", "ready", "late", "escalated", "failed", "done", "skipped"]
STEP_STATES: Final[tuple[StepState, ...]] = (
    "pending",
    "ready",
    "late",
    "escalated",
    "failed",
    "done",
    "skipped",
)
"""A step: pending (waits for its needs) -> ready -> done | skipped; on the way late,
escalated or failed (its action failed)."""
FINISHED_STEP_STATES: Final[tuple[StepState, ...]] = ("done", "skipped")
OPEN_STEP_STATES: Final[tuple[StepState, ...]] = ("pending", "ready", "late", "escalated", "failed")
"""Steps still to be worked (the handover report lists them)."""

# --- severities for display -----------------------------------------------------------------

SEVERITIES_WORST_FIRST: Final[tuple[Severity, ...]] = tuple(reversed(SEVERITIES))
"""critical, major, minor, info: the order lists and pickers show them in."""

# --- the library's answer to each kind -----------------------------------------------------

DEFAULT_PLAYBOOKS: Final[Mapping[str, str]] = MappingProxyType(
    dict(
        zip(
            INCIDENT_KINDS,
            (
                "contact-surge",  # surge
                "sla-breach",  # sla
                "network-outage",  # outage
                "public-opinion",  # opinion
                "data-leak",  # leak
                "audit-integrity",  # integrity
                "disaster",  # manual
            ),
            strict=True,
        )
    )
)
"""Incident kind -> the default library's playbook for it (playbooks/library/<id>.toml);
the console pre-fills it when the API gives no library."""
