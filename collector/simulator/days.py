"""Recorded days for back-testing: 24 h of a contact centre, with labelled real emergencies.

A day is the simulated centre of :mod:`collector.simulator.world` run from
00:00 to 24:00 China time, independent of the detectors' test cases:

- arrivals follow a daily curve (quiet night 01:00-07:00, morning ramp, lunch
  dip, evening peak 20:00-23:00; Double 11 adds its midnight rush at
  00:00-01:00 at 5-10x and a busy day; the Spring Festival eve is thin and
  goes quiet during the gala), Poisson with random handle times;
- staffing follows the forecast per half hour (square-root staffing), so a
  big but planned and staffed peak is not an SLA breach, and a gradual ramp
  is not a surge;
- noise: single failed probes, latency spikes, one probe flapping for two
  minutes, heartbeats with jitter and an occasional missed beat (never three
  intervals), customers typing their own phone and ID numbers, agents quoting
  order numbers (some pass Luhn), waybills and masked phones, CRM views in
  working hours, a nightly batch export by a service account, social mentions
  with some negative ones;
- a few labelled emergencies (:class:`Injection`): a promotion gone viral at
  an unplanned hour, a 10-minute order-api outage, a 5-minute chat-gateway
  heartbeat loss, an agent pasting a customer's ID number, an opinion storm;
- labelled casework emergencies (:class:`CaseEmergency`, planned in the
  casework's own stream): a delivery delay left without a solution past the
  2 hours, one agent paying out refunds in a burst, one account claiming
  refund-only again and again.

:func:`expected_day` lists the emergencies (kind, subject, window) and the
noise (what must *not* open an incident) for ``<file>.expected.json``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from watchfloor.collector.simulator import content
from watchfloor.collector.simulator.casework import (
    ACCOUNT_BURST,
    AGENT_BURST,
    AGENT_BURST_S,
    DELAY_LATE_S,
    DELAY_QUEUE,
    CaseEmergency,
)
from watchfloor.collector.simulator.world import (
    COMPONENTS,
    HEARTBEAT_EVERY_S,
    PROBE_EVERY_S,
    QUEUES,
    Effects,
    QueueSpec,
    World,
    _QueueState,
)
from watchfloor.security.pii import mask_text

CHINA: Final = timezone(timedelta(hours=8))
DAY_S: Final = 86_400
SLOT_S: Final = 1800
"""Staffing is planned per half hour."""
SERVICE_ACCOUNT: Final = "svc-bi-export"
"""The BI warehouse's nightly export of the customer table (allow-list it in the rules)."""
NIGHTLY_EXPORT_RECORDS: Final = 182_000
DETECT_GRACE_S: Final = 600
"""An expected incident counts when it opens from its start to this long after its end."""

# fmt: off
HOURLY: Final = (0.30, 0.12, 0.06, 0.04, 0.04, 0.05, 0.09, 0.22, 0.48, 0.78, 0.92, 0.88,
                 0.62, 0.72, 0.86, 0.88, 0.84, 0.78, 0.74, 0.84, 1.00, 1.00, 0.94, 0.66)
# fmt: on
"""Share of the full arrival rate, per hour of the day (value at the middle of the hour)."""


@dataclass(frozen=True, slots=True)
class Injection:
    """A real emergency put into the day, and the incidents it must open."""

    label: str
    start_s: int
    duration_s: int
    effects: Effects
    expects: tuple[tuple[str, str], ...]
    """(kind, subject) of each incident it must open."""
    why: str


@dataclass(frozen=True, slots=True)
class Day:
    name: str
    title: str
    date: tuple[int, int, int]
    volume: float
    """Scale of the whole day's arrivals."""
    injections: tuple[Injection, ...]
    midnight_rush: float = 0.0
    """Extra multiple of the full rate at 00:00, fading over the first hour (Double 11)."""
    gala_quiet: bool = False
    """New Year's Eve: the evening empties while the Spring Festival gala is on."""
    flap_at_s: int = 0
    flap_component: str = "ivr"
    casework: tuple[CaseEmergency, ...] = ()
    """Labelled casework emergencies (the casework's own random stream)."""


def _at(hour: int, minute: int = 0) -> int:
    return hour * 3600 + minute * 60


def _viral(start: int, mult: float, queue: str = "presale-chat") -> Injection:
    return Injection(
        "promotion gone viral",
        start,
        25 * 60,
        Effects(rate={queue: mult}),
        (("surge", queue), ("sla", queue)),
        f"unplanned {mult:.0f}x arrivals for 25 min, staffing on the forecast",
    )


def _outage(start: int) -> Injection:
    return Injection("order-api outage", start, 600, Effects(down=frozenset({"order-api"})),
                     (("outage", "order-api"),), "order-api probes down for 10 min")  # fmt: skip


def _gateway(start: int) -> Injection:
    return Injection("chat-gateway heartbeat loss", start, 300,
                     Effects(silent=frozenset({"chat-gateway"})), (("outage", "chat-gateway"),),
                     "chat gateway sends nothing for 5 min")  # fmt: skip


def _leak(start: int, agent: str) -> Injection:
    return Injection("agent pastes a customer's ID number", start, 20,
                     Effects(leak_agent=agent), (("leak", agent),),
                     "one agent message to a customer with a resident ID and mobile")  # fmt: skip


def _storm(start: int, topic: str) -> Injection:
    return Injection("opinion storm", start, 20 * 60, Effects(storm_topic=topic),
                     (("opinion", topic),), "negative posts 30x the usual, one viral")  # fmt: skip


def _casework(
    delay: int, agent: tuple[int, str], account: tuple[int, str]
) -> tuple[CaseEmergency, ...]:
    return (
        CaseEmergency("unanswered delay", delay, DELAY_QUEUE),
        CaseEmergency("agent payout burst", *agent),
        CaseEmergency("account refund burst", *account),
    )


CASE_LABELS: Final = {
    "unanswered delay": (
        "delivery delay left without a solution", "sla", "logistics.unanswered",
        f"reported to after-sales, a solution only {DELAY_LATE_S // 60} min later (rule: 2 h)",
    ),
    "agent payout burst": (
        "agent pays out refunds in a burst", "leak", "orders.agent_burst",
        f"{AGENT_BURST} refund-only / compensation on {AGENT_BURST} accounts "
        f"in {AGENT_BURST_S // 60} min",
    ),
    "account refund burst": (
        "account claims refund-only again and again", "leak", "orders.account_burst",
        f"refund-only on {ACCOUNT_BURST} orders, each with another agent",
    ),
}  # fmt: skip
"""Per casework emergency: label, incident kind, rule, why."""

DAYS: Final[dict[str, Day]] = {
    d.name: d
    for d in (
        Day(
            "day-normal",
            "an ordinary Wednesday",
            (2026, 11, 4),
            1.0,
            (
                _outage(_at(10, 20)),
                _leak(_at(11, 5), "agent-023"),
                _viral(_at(15, 10), 4.0),
                _gateway(_at(16, 40)),
                _storm(_at(19, 30), "云杉优选"),
            ),
            flap_at_s=_at(9, 12),
            casework=_casework(_at(13, 15), (_at(12, 35), "agent-017"), (_at(17, 20), "m40318862")),
        ),
        Day(
            "day-double11",
            "Double 11: midnight rush, a busy day, a busier evening",
            (2026, 11, 11),
            2.5,
            (
                _gateway(_at(3, 20)),
                _viral(_at(14, 20), 3.0, "hotline"),
                _outage(_at(17, 45)),
                _leak(_at(21, 15), "agent-008"),
                _storm(_at(22, 10), "极速达配送"),
            ),
            midnight_rush=0.9,
            flap_at_s=_at(12, 3),
            casework=_casework(_at(9, 30), (_at(20, 5), "agent-031"), (_at(1, 10), "m77201945")),
        ),
        Day(
            "day-spring-festival",
            "Spring Festival eve: thin staff, a quiet gala night",
            (2027, 2, 5),
            0.45,
            (
                _storm(_at(9, 40), "极速达配送"),
                _leak(_at(13, 25), "agent-036"),
                _outage(_at(14, 50)),
                _viral(_at(18, 5), 5.0),
                _gateway(_at(20, 30)),
            ),
            gala_quiet=True,
            flap_at_s=_at(7, 30),
            casework=_casework(_at(16, 20), (_at(11, 45), "agent-012"), (_at(21, 40), "m15560327")),
        ),
    )
}
NAMES: Final = tuple(DAYS)


def day_start(day: Day) -> float:
    """00:00 China time of the day, as a Unix timestamp."""
    return datetime(*day.date, tzinfo=CHINA).timestamp()


def curve(day: Day, t: float) -> float:
    """Share of the full arrival rate at ``t`` seconds after midnight (before ``volume``)."""
    h = (t / 3600 - 0.5) % 24
    i = int(h)
    base = HOURLY[i] + (HOURLY[(i + 1) % 24] - HOURLY[i]) * (h - i)
    if day.gala_quiet and t >= _at(20):
        base *= 0.45
    if day.midnight_rush and t < 3600:
        base += day.midnight_rush * math.exp(-t / 1500) * min(1.0, t / 120 + 0.5)
    return base


class DayWorld(World):
    """The centre over a whole day: daily curve, planned staffing, flaky probes, jittery beats."""

    def __init__(
        self, day: Day, rng: random.Random, start_ts: float, run_tag: str, start_s: int = 0
    ) -> None:
        super().__init__(rng, start_ts, run_tag)
        self.day = day
        self.t = start_s
        self._staff = {spec.name: _staffing(day, spec) for spec in QUEUES}
        self._next_beat = {s: start_s + rng.uniform(0, HEARTBEAT_EVERY_S) for s in _BEATS}
        self.noise: list[dict[str, Any]] = []
        self._ramp_t, self._ramp = -1, 0.0
        self._failed_at: dict[str, int] = {}
        # The emergencies' own stream: the ordinary casework and the rest draw as before.
        emergencies = random.Random(f"casework-emergencies-{run_tag}-{start_ts}")
        self.casework.plan(day.casework, emergencies, start_ts, start_ts + start_s)

    def ramp(self) -> float:
        if self._ramp_t != self.t:
            self._ramp_t, self._ramp = self.t, curve(self.day, self.t) * self.day.volume
        return self._ramp

    def load(self, spec: QueueSpec) -> float:
        return self.ramp()

    def seats(self, q: _QueueState) -> int:
        return self._staff[q.spec.name][min(self.t // SLOT_S, DAY_S // SLOT_S - 1)]

    def step(self, effects: Effects) -> list[dict[str, Any]]:
        events = super().step(effects)
        events.sort(key=lambda e: e["ts"])
        return events

    # --- heartbeats: jitter and an occasional missed beat ----------------------------------

    def _heartbeats(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        out = []
        for source, due in self._next_beat.items():
            if due >= self.t + 1:
                continue
            interval = HEARTBEAT_EVERY_S + self.rng.gauss(0, 0.25)
            if self.rng.random() < 0.0004:  # a lost beat or two: never three intervals
                missed = self.rng.choice((1, 2))
                self._note("missed heartbeat", source, ts, f"{missed} beat(s) missing")
                interval += missed * HEARTBEAT_EVERY_S
            self._next_beat[source] = due + min(max(1.0, interval), 2.9 * HEARTBEAT_EVERY_S)
            out.append(self._event("heartbeat", self.start_ts + due, source))
        return out

    # --- probes: single failures, latency spikes, one flapping probe ------------------------

    def _probes(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        if self.t % PROBE_EVERY_S:
            return []
        out = []
        for component in COMPONENTS:
            out.append(self._event("health", ts, "probe-hz", component=component,
                                   **self._probe_fields(component, ts, fx)))  # fmt: skip
        return out

    def _probe_fields(self, component: str, ts: float, fx: Effects) -> dict[str, Any]:
        flapping = (component == self.day.flap_component
                    and 0 <= self.t - self.day.flap_at_s < 120)  # fmt: skip
        if component in fx.down or (flapping and (self.t // PROBE_EVERY_S) % 2 == 0):
            return {"status": "down", "latency_ms": 3000.0, "error_rate": 1.0,
                    "message": f"HTTP 503 from {component} (upstream timeout)"}  # fmt: skip
        roll = self.rng.random()
        if roll < 0.0008 and self._failed_at.get(component, -99) < self.t - PROBE_EVERY_S:
            self._failed_at[component] = self.t  # single: never two in a row
            self._note("single failed probe", component, ts, "one check timed out")
            return {"status": "down", "latency_ms": 5000.0, "error_rate": 1.0,
                    "message": f"timeout after 5000 ms from {component}"}  # fmt: skip
        latency = self.rng.lognormvariate(math.log(80), 0.3)
        if roll < 0.004:
            latency = self.rng.uniform(900, 2500)
            self._note("latency spike", component, ts, f"{latency:.0f} ms")
        return {"status": "up", "latency_ms": round(latency, 1),
                "error_rate": round(self.rng.uniform(0, 0.004), 4)}  # fmt: skip

    def _messages(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        out = super()._messages(ts, replace(fx, leak_agent=None))
        if fx.leak_agent and self.t == self.phase_start:  # one paste of an ID number
            text = content.fill(content.LEAK_LINES[0], self.rng)
            out.append(self._message(ts, fx.leak_agent, "to_customer", text))
        return out

    # --- CRM: views in working hours, the nightly export -------------------------------------

    def _crm(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        hour = self.t / 3600
        working = 1.0 if 8 <= hour < 22 else 0.03
        out = [self._access(ts, self.rng.choice(_AGENTS), "view", 1)
               for _ in range(self._arrivals(6.0 * self.ramp() * working))]  # fmt: skip
        if self.t == _at(2, 30):
            self._note("nightly batch export", SERVICE_ACCOUNT, ts,
                       f"{NIGHTLY_EXPORT_RECORDS} records to the BI warehouse")  # fmt: skip
            out.append(self._access(ts, SERVICE_ACCOUNT, "export", NIGHTLY_EXPORT_RECORDS))
        if fx.export and not self._export_done:
            self._export_done = True
            actor, records = fx.export
            out.append(self._access(ts, actor, "export", records))
        return out

    # --- social: mentions follow the day -------------------------------------------------

    negative_share = 0.12

    def social_factor(self) -> float:
        return 0.25 + curve(self.day, self.t)

    def _note(self, what: str, subject: str, ts: float, detail: str) -> None:
        self.noise.append({"noise": what, "subject": subject, "ts": round(ts, 3),
                           "detail": detail})  # fmt: skip


_BEATS: Final = ("chat-gateway", "acd")
_AGENTS: Final = tuple(f"agent-{i:03d}" for i in range(1, 41))


def _staffing(day: Day, spec: QueueSpec) -> list[int]:
    """Seats per half hour: square-root staffing on the forecast (a + 1.5 sqrt(a) + 1)."""
    out = []
    for slot in range(DAY_S // SLOT_S):
        peak = max(curve(day, slot * SLOT_S + s) for s in range(0, SLOT_S + 1, 300))
        erlangs = spec.rate_per_min * peak * day.volume / 60 * spec.aht_s
        out.append(max(2, math.ceil(erlangs + 1.5 * math.sqrt(erlangs) + 1)))
    return out


@dataclass(slots=True)
class _Active:
    injections: list[Injection] = field(default_factory=list)

    def effects(self) -> Effects:
        fx = Effects()
        for inj in self.injections:
            e = inj.effects
            fx.rate.update(e.rate)
            fx.down |= e.down
            fx.silent |= e.silent
            fx.storm_topic = e.storm_topic or fx.storm_topic
            fx.leak_agent = e.leak_agent or fx.leak_agent
            fx.export = e.export or fx.export
        return fx


def day_world(name: str, *, seed: int = 0, start_s: int = 0) -> DayWorld:
    """A fresh world for day ``name`` from ``start_s`` after midnight (empty queues then);
    its ``noise`` fills up as it runs."""
    day = DAYS[name]
    rng = random.Random(seed)
    return DayWorld(day, rng, day_start(day), f"{name}-s{seed}-{start_s}", start_s)


def run_day(world: DayWorld, seconds: int = DAY_S) -> Iterator[list[dict[str, Any]]]:
    """The events of every second of the world's day from where it stands (``seconds``)."""
    active: list[Injection] = []
    fx = Effects()
    for t in range(world.t, min(world.t + seconds, DAY_S)):
        now = [i for i in world.day.injections if i.start_s <= t < i.start_s + i.duration_s]
        if now != active:
            active = now
            world.start_phase()
            fx = _Active(active).effects()
        yield world.step(fx)


def casework_day(name: str, *, seed: int = 0) -> Iterator[list[dict[str, Any]]]:
    """The casework events of each second of day ``name``, alone: the same events as in the
    whole day (the same streams, ids and seconds), at a fraction of the cost."""
    world = day_world(name, seed=seed)
    for t in range(DAY_S):
        world.t = t
        yield world.casework.second(world.start_ts + t, world.ramp(), world._event)


def expected_day(name: str, start_ts: float | None = None) -> list[dict[str, Any]]:
    """The incidents the injected emergencies must open, each with its time window."""
    day = DAYS[name]
    start = start_ts or day_start(day)
    out = []
    for inj in day.injections:
        for kind, subject in inj.expects:
            out.append(
                {
                    "label": inj.label,
                    "kind": kind,
                    "subject": subject,
                    "why": inj.why,
                    "from_ts": start + inj.start_s,
                    "to_ts": start + inj.start_s + inj.duration_s + DETECT_GRACE_S,
                }
            )
    for em in day.casework:
        label, kind, rule, why = CASE_LABELS[em.what]
        out.append(
            {
                "label": label,
                "kind": kind,
                "subject": mask_text(em.subject),  # as the rules show an account
                "rule": rule,
                "why": why,
                "from_ts": start + em.start_s,
                "to_ts": start + em.start_s + em.duration_s + DETECT_GRACE_S,
            }
        )
    return sorted(out, key=lambda e: e["from_ts"])


def noise_of(world_noise: list[dict[str, Any]], day: Day, start: float) -> list[dict[str, Any]]:
    """The noise the day contains on purpose (must not open incidents), flap included."""
    flap = {"noise": "probe flapping", "subject": day.flap_component,
            "ts": start + day.flap_at_s, "detail": "down/up every check for 2 min"}  # fmt: skip
    return sorted([*world_noise, flap], key=lambda n: n["ts"])
