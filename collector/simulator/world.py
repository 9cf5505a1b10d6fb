"""The simulated contact centre: queues with agents, gateways, probes, social media, CRM.

:class:`World` advances one second of event time per :meth:`World.step` and
returns the events of that second as contract maps. Queues are small
multi-server models: contacts arrive (Poisson, at a rate that follows a
morning ramp), wait in FIFO order, are answered when a seat frees up or
abandon when their patience runs out, and are completed after a handle time;
every 10 s each queue reports a ``queue.stats`` snapshot with the counts since
the previous one. Around them: gateway and ACD heartbeats, health probes of
the back-end components, agents' and customers' chat messages, CRM record
views and social-media mentions. A scenario changes the world through
:class:`Effects` (more arrivals, a component down, a silent gateway...).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from watchfloor.collector.simulator import content
from watchfloor.collector.simulator.casework import Casework

STATS_EVERY_S: Final = 10
HEARTBEAT_EVERY_S: Final = 5
PROBE_EVERY_S: Final = 10
AGENTS: Final = tuple(f"agent-{i:03d}" for i in range(1, 41))
COMPONENTS: Final = ("order-api", "crm", "payment", "ivr")
TOPICS: Final = {"云杉优选": 0.6, "极速达配送": 0.3}
"""Watched topics (our brand, our delivery service) and their mentions per minute."""
HEARTBEAT_SOURCES: Final = ("chat-gateway", "acd")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    label: str
    """The queue's name on the contact centre's own wall board."""
    channel: str
    source: str
    """The system that reports this queue (chat gateway, ACD...)."""
    seats: int
    """Contacts handled at once (agents x concurrent chats)."""
    aht_s: float
    rate_per_min: float
    """Arrivals per minute at full morning ramp."""
    patience_s: float
    sla_s: float


QUEUES: Final = (
    QueueSpec("presale-chat", "售前咨询", "chat", "chat-gateway", 30, 300, 3.6, 180, 30),
    QueueSpec("aftersale-chat", "售后服务", "chat", "chat-gateway", 24, 420, 2.0, 240, 30),
    QueueSpec("hotline", "热线", "phone", "acd", 20, 240, 3.0, 90, 15),
    QueueSpec("email", "邮件", "email", "email-gateway", 6, 600, 0.35, 1e9, 86400),
    QueueSpec("complaints", "投诉", "ticket", "ticket-system", 4, 900, 0.15, 1e9, 86400),
    QueueSpec("social", "社交媒体", "social", "social-desk", 4, 300, 0.4, 3600, 3600),
)


@dataclass(slots=True)
class Effects:
    """How a scenario phase bends the world."""

    rate: dict[str, float] = field(default_factory=dict)
    """Queue name -> arrival multiplier."""
    down: frozenset[str] = frozenset()
    """Components whose probes fail."""
    silent: frozenset[str] = frozenset()
    """Sources that send nothing at all (a crashed gateway)."""
    storm_topic: str | None = None
    leak_agent: str | None = None
    export: tuple[str, int] | None = None
    """(actor, records) of one bulk export early in the phase."""


@dataclass(slots=True)
class _Contact:
    cid: str
    arrived: float
    patience: float


@dataclass(slots=True)
class _QueueState:
    spec: QueueSpec
    waiting: deque[_Contact] = field(default_factory=deque)
    busy: list[tuple[float, _Contact, float]] = field(default_factory=list)
    """(finish time, contact, wait) of every contact being handled."""
    counts: dict[str, int] = field(
        default_factory=lambda: {"offered": 0, "answered": 0, "abandoned": 0, "answered_in_sla": 0}
    )


class World:
    """One contact centre, stepped one second of event time at a time."""

    def __init__(self, rng: random.Random, start_ts: float, run_tag: str = "sim") -> None:
        self.rng = rng
        self.start_ts = start_ts
        self.run_tag = run_tag
        """Part of every event id, so that two runs never look like duplicates."""
        self.t = 0
        self.phase_start = 0
        self.queues = [_QueueState(spec) for spec in QUEUES]
        self._seq: dict[str, int] = {}
        self._export_done = False
        # Its own random stream: the casework leaves every other draw as it was.
        self.casework = Casework(random.Random(f"casework-{run_tag}-{start_ts}"), AGENTS)

    def ramp(self) -> float:
        """Morning ramp: 60 % of the full rate at the start, 100 % after 90 minutes."""
        rise = 0.6 + 0.4 * min(1.0, self.t / 5400)
        return rise * (1.0 + 0.05 * math.sin(self.t / 600))

    def load(self, spec: QueueSpec) -> float:
        """Multiplier of the queue's full arrival rate now (a day overrides it)."""
        return self.ramp()

    def seats(self, q: _QueueState) -> int:
        """Contacts the queue can handle at once now (a day staffs to its forecast)."""
        return q.spec.seats

    negative_share = 0.15
    """Share of ordinary mentions that are negative."""

    def social_factor(self) -> float:
        """Multiplier of the usual mentions per minute now (a day follows its curve)."""
        return 1.0

    def step(self, effects: Effects) -> list[dict[str, Any]]:
        """The events of the next second."""
        ts = self.start_ts + self.t
        # Casework first: its events are stamped with the second's start, the others after.
        out: list[dict[str, Any]] = self.casework.second(ts, self.ramp(), self._event)
        for queue in self.queues:
            out += self._queue_second(queue, ts, effects)
        out += self._heartbeats(ts, effects)
        out += self._probes(ts, effects)
        out += self._messages(ts, effects)
        out += self._crm(ts, effects)
        out += self._social(ts, effects)
        self.t += 1
        return [e for e in out if e["source"] not in effects.silent]

    def start_phase(self) -> None:
        self._export_done = False
        self.phase_start = self.t

    # --- helpers ---------------------------------------------------------------------------

    def _event(self, etype: str, ts: float, source: str, **fields: Any) -> dict[str, Any]:
        n = self._seq[source] = self._seq.get(source, 0) + 1
        return {"type": etype, "ts": round(ts, 3), "source": source,
                "id": f"{source}-{self.run_tag}-{n}", **fields}  # fmt: skip

    def _arrivals(self, per_min: float) -> int:
        """Poisson arrivals in one second (Knuth; the means here are small)."""
        mean = per_min / 60.0
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    # --- queues ----------------------------------------------------------------------------

    def _queue_second(self, q: _QueueState, ts: float, fx: Effects) -> list[dict[str, Any]]:
        spec, out = q.spec, []
        rate = spec.rate_per_min * self.load(spec) * fx.rate.get(spec.name, 1.0)
        for _ in range(self._arrivals(rate)):
            contact = _Contact(
                self._contact_id(spec), ts, self.rng.expovariate(1 / spec.patience_s)
            )
            q.waiting.append(contact)
            q.counts["offered"] += 1
            out.append(self._contact(spec, ts, contact.cid, "offered"))
        out += self._finish(q, ts)
        out += self._abandon(q, ts)
        out += self._answer(q, ts)
        if self.t % STATS_EVERY_S == 0:
            out.append(self._stats(q, ts))
        return out

    def _contact_id(self, spec: QueueSpec) -> str:
        n = self._seq[f"contact:{spec.name}"] = self._seq.get(f"contact:{spec.name}", 0) + 1
        return f"{spec.name}-{n:06d}"

    def _contact(self, spec: QueueSpec, ts: float, cid: str, action: str, **kw: Any) -> dict:
        return self._event("contact", ts, spec.source, contact_id=cid, queue=spec.name,
                           channel=spec.channel, action=action, **kw)  # fmt: skip

    def _finish(self, q: _QueueState, ts: float) -> list[dict[str, Any]]:
        done = [b for b in q.busy if b[0] <= ts]
        if not done:
            return []
        q.busy = [b for b in q.busy if b[0] > ts]
        out = []
        for finish, contact, wait in done:
            extra: dict[str, Any] = {
                "wait_s": round(wait, 1),
                "handle_s": round(finish - contact.arrived - wait, 1),
            }
            if self.rng.random() < 0.3:
                extra["csat"] = self._rating(wait, q.spec.sla_s)
            out.append(self._contact(q.spec, ts, contact.cid, "completed", **extra))
        return out

    def _rating(self, wait: float, sla_s: float) -> int:
        """Satisfaction 1-5: about 97 % satisfied (4-5) when served in time, far less after
        a long wait (the documents' target is 95 %)."""
        weights = (80, 17, 2, 0.7, 0.3) if wait <= 2 * sla_s else (25, 35, 20, 12, 8)
        return self.rng.choices((5, 4, 3, 2, 1), weights)[0]

    def _abandon(self, q: _QueueState, ts: float) -> list[dict[str, Any]]:
        out = []
        while q.waiting and ts - q.waiting[0].arrived > q.waiting[0].patience:
            gone = q.waiting.popleft()
            q.counts["abandoned"] += 1
            out.append(self._contact(q.spec, ts, gone.cid, "abandoned",
                                     wait_s=round(ts - gone.arrived, 1)))  # fmt: skip
        return out

    def _answer(self, q: _QueueState, ts: float) -> list[dict[str, Any]]:
        out = []
        while q.waiting and len(q.busy) < self.seats(q):
            contact = q.waiting.popleft()
            wait = ts - contact.arrived
            handle = self.rng.lognormvariate(math.log(q.spec.aht_s) - 0.125, 0.5)
            q.busy.append((ts + handle, contact, wait))
            q.counts["answered"] += 1
            q.counts["answered_in_sla"] += wait <= q.spec.sla_s
            out.append(self._contact(q.spec, ts, contact.cid, "answered", wait_s=round(wait, 1)))
        return out

    def _stats(self, q: _QueueState, ts: float) -> dict[str, Any]:
        longest = ts - q.waiting[0].arrived if q.waiting else 0.0
        busy = len(q.busy)
        event = self._event(
            "queue.stats", ts, q.spec.source, queue=q.spec.name, channel=q.spec.channel,
            waiting=len(q.waiting), longest_wait_s=round(longest, 1),
            agents_available=max(0, self.seats(q) - busy), agents_busy=busy,
            interval_s=float(STATS_EVERY_S), **q.counts,
        )  # fmt: skip
        q.counts = dict.fromkeys(q.counts, 0)
        return event

    # --- everything around the queues ------------------------------------------------------

    def _heartbeats(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        if self.t % HEARTBEAT_EVERY_S:
            return []
        return [self._event("heartbeat", ts, source) for source in HEARTBEAT_SOURCES]

    def _probes(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        if self.t % PROBE_EVERY_S:
            return []
        out = []
        for component in COMPONENTS:
            if component in fx.down:
                fields = {"status": "down", "latency_ms": 3000.0, "error_rate": 1.0,
                          "message": f"HTTP 503 from {component} (upstream timeout)"}  # fmt: skip
            else:
                latency = self.rng.lognormvariate(math.log(80), 0.3)
                fields = {"status": "up", "latency_ms": round(latency, 1),
                          "error_rate": round(self.rng.uniform(0, 0.004), 4)}  # fmt: skip
            out.append(self._event("health", ts, "probe-hz", component=component, **fields))
        return out

    def _messages(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        out = []
        for _ in range(self._arrivals(14.0 * self.ramp())):
            out.append(self._chat_message(ts))
        if fx.leak_agent and self.t % 20 == 0:
            text = content.fill(self.rng.choice(content.LEAK_LINES), self.rng)
            out.append(self._message(ts, fx.leak_agent, "to_customer", text))
        return out

    def _chat_message(self, ts: float) -> dict[str, Any]:
        roll = self.rng.random()
        lines: tuple[str, ...]
        if roll < 0.55:
            direction, lines = "to_customer", content.AGENT_LINES
        elif roll < 0.9:
            direction, lines = "from_customer", content.CUSTOMER_LINES
        else:
            direction, lines = "internal", content.INTERNAL_LINES
        text = content.fill(self.rng.choice(lines), self.rng)
        return self._message(ts, self.rng.choice(AGENTS), direction, text)

    def _message(self, ts: float, agent: str, direction: str, text: str) -> dict[str, Any]:
        conversation = f"cv-{self.rng.randint(100000, 999999)}"
        return self._event("agent.message", ts, "chat-gateway", agent_id=agent,
                           conversation_id=conversation, channel="chat", direction=direction,
                           text=text)  # fmt: skip

    def _crm(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        out = []
        for _ in range(self._arrivals(6.0 * self.ramp())):
            out.append(self._access(ts, self.rng.choice(AGENTS), "view", 1))
        if fx.export and not self._export_done:
            self._export_done = True
            actor, records = fx.export
            out.append(self._access(ts, actor, "export", records))
        return out

    def _access(self, ts: float, actor: str, action: str, records: int) -> dict[str, Any]:
        resource = ("crm/customers" if records > 1
                    else f"crm/customer/{self.rng.randint(1, 2_000_000)}")  # fmt: skip
        ip = f"127.8.{self.rng.randint(0, 3)}.{self.rng.randint(2, 250)}"  # loopback range only
        return self._event("data.access", ts, "crm-audit", actor=actor, action=action,
                           resource=resource, records=records, ip=ip, ok=True)  # fmt: skip

    def _social(self, ts: float, fx: Effects) -> list[dict[str, Any]]:
        out = []
        for topic, per_min in TOPICS.items():
            storm = topic == fx.storm_topic
            for _ in range(self._arrivals(18.0 if storm else per_min * self.social_factor())):
                negative = self.rng.random() < (0.8 if storm else self.negative_share)
                out.append(self._mention(ts, topic, content.social_post(self.rng, topic, negative),
                                         self.rng.lognormvariate(math.log(500), 1.5)))  # fmt: skip
            if storm and self.t - self.phase_start == 180:
                out.append(self._mention(ts, topic, content.VIRAL_POST.format(topic=topic),
                                         2_300_000, sentiment=-0.9))  # fmt: skip
        return out

    def _mention(
        self, ts: float, topic: str, text: str, followers: float, sentiment: float | None = None
    ) -> dict[str, Any]:
        event = self._event(
            "social.mention", ts, "social-listening", platform=self.rng.choice(content.PLATFORMS),
            topic=topic, text=text, author=content.author_handle(self.rng),
            followers=int(followers), url=f"https://example.com/p/{self.rng.randint(1, 10**9)}",
        )  # fmt: skip
        if sentiment is not None:
            event["sentiment"] = sentiment
        return event
