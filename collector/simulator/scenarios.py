"""Scenarios: timelines of phases over the simulated contact centre, and what they should open.

Every run starts with a 35-minute warm-up of ordinary traffic, sent as fast
as the collector takes it (not paced), so the detectors have the history
they need (the surge detector wants 30 minutes) without the audience waiting
for it. The first scenario's *onset* (``Scenario.onset_s``: for the holiday
peak, the first seven minutes, surging, backlog building) belongs
to that pre-rolled history too, so live at ``--speed 1`` the surge and its
SLA breach fire within seconds of the start. Then the phases play out in
event time, paced at ``--speed``; each lasts a few minutes. ``all`` plays
every scenario one after another, the holiday peak first.
:func:`expected_incidents` says which incidents (kind + subject, DESIGN.md's
contract) each scenario must open, so tests can check a replay.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

from watchfloor.collector.simulator.world import Effects, World

WARMUP_S: Final = 35 * 60


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    duration_s: int
    effects: Effects = field(default_factory=Effects)
    paced: bool = True


@dataclass(frozen=True, slots=True)
class Expected:
    """An incident a scenario must open."""

    kind: str
    subject: str
    why: str


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    phases: tuple[Phase, ...]
    expected: tuple[Expected, ...] = ()
    onset_s: int = 0
    """Seconds of its opening that are pre-rolled with the warm-up when it plays first."""


PEAK_RATES: Final = {"presale-chat": 5.0, "hotline": 4.0, "aftersale-chat": 1.5}
LEAK_AGENT: Final = "agent-017"
EXPORT_ACTOR: Final = "agent-031"
STORM_TOPIC: Final = "云杉优选"
PEAK_ONSET_S: Final = 420
"""The holiday peak's opening in the pre-rolled history: by then the presale chat's
5-minute window is all peak (a major surge, 3x and more) and its longest wait has been
past 30 s for minutes."""

SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "normal",
            "日常 an ordinary morning: daily ramp, nothing wrong",
            (Phase("normal", 30 * 60),),
        ),
        Scenario(
            "double11-peak",
            "双十一 peak: presale chat and hotline flooded, waits beyond SLA",
            (
                Phase("peak-rise", 120, Effects(rate={"presale-chat": 2.5, "hotline": 2.0})),
                Phase("peak", 540, Effects(rate=PEAK_RATES)),
                Phase("peak-recovery", 240),
            ),
            (
                Expected("surge", "presale-chat", "offered 5x the baseline"),
                Expected("sla", "presale-chat", "chat waits far beyond 30 s"),
                Expected("surge", "hotline", "offered 4x the baseline"),
                Expected("sla", "hotline", "phone waits beyond 15 s"),
            ),
            onset_s=PEAK_ONSET_S,
        ),
        Scenario(
            "order-api-outage",
            "订单接口故障 the order API is down for four minutes",
            (
                Phase("before-outage", 60),
                Phase(
                    "order-api-down",
                    240,
                    Effects(down=frozenset({"order-api"}), rate={"aftersale-chat": 1.3}),
                ),
                Phase("outage-recovery", 180),
            ),
            (Expected("outage", "order-api", "24 consecutive probes down"),),
        ),
        Scenario(
            "chat-gateway-down",
            "在线客服网关宕机 the chat gateway stops: no heartbeat, no chats",
            (
                Phase("gateway-down", 240, Effects(silent=frozenset({"chat-gateway"}))),
                Phase("gateway-recovery", 180),
            ),
            (Expected("outage", "chat-gateway", "heartbeat lost for 4 minutes"),),
        ),
        Scenario(
            "opinion-storm",
            "舆情 a storm of negative posts about the brand, one gone viral",
            (
                Phase("storm", 420, Effects(storm_topic=STORM_TOPIC)),
                Phase("storm-recovery", 180),
            ),
            (Expected("opinion", STORM_TOPIC, "mentions 30x the baseline, mostly negative"),),
        ),
        Scenario(
            "agent-leak",
            "信息泄露 an agent sends a customer's ID, bank card and mobile",
            (Phase("leak", 60, Effects(leak_agent=LEAK_AGENT)), Phase("after-leak", 180)),
            (Expected("leak", LEAK_AGENT, "resident ID / bank card / mobile to a customer"),),
        ),
        Scenario(
            "bulk-export",
            "批量导出 an agent exports 5 000 customer records",
            (
                Phase("export", 60, Effects(export=(EXPORT_ACTOR, 5000))),
                Phase("after-export", 180),
            ),
            (Expected("leak", EXPORT_ACTOR, "export of 5 000 records"),),
        ),
    )
}
ALL_ORDER: Final = (
    "double11-peak", "order-api-outage", "chat-gateway-down", "opinion-storm", "agent-leak",
    "bulk-export",
)  # fmt: skip
NAMES: Final = (*SCENARIOS, "all")


class UnknownScenario(ValueError):
    """No scenario of that name."""


def plan(name: str) -> list[tuple[str, Phase]]:
    """(scenario, phase) in playing order, the warm-up first.

    The first scenario's onset is unpaced: a phase that straddles the end of the
    onset is split in two parts of the same name (the world sees one phase).
    """
    if name not in NAMES:
        raise UnknownScenario(f"unknown scenario {name!r}; choose one of {', '.join(NAMES)}")
    names = ALL_ORDER if name == "all" else (name,)
    phases = [("warm-up", Phase("warm-up", WARMUP_S, paced=False))]
    onset = SCENARIOS[names[0]].onset_s
    for scenario in names:
        for phase in SCENARIOS[scenario].phases:
            head = min(onset, phase.duration_s)
            onset -= head
            if head:
                phases.append((scenario, replace(phase, duration_s=head, paced=False)))
            if phase.duration_s > head:
                phases.append((scenario, replace(phase, duration_s=phase.duration_s - head)))
    return phases


def pre_rolled_s(name: str) -> tuple[int, int]:
    """(unpaced seconds at the start, paced seconds after them) of scenario ``name``."""
    phases = [phase for _, phase in plan(name)]
    unpaced = sum(p.duration_s for p in phases if not p.paced)
    return unpaced, sum(p.duration_s for p in phases) - unpaced


def expected_incidents(name: str, start_ts: float | None = None) -> list[dict[str, Any]]:
    """The incidents ``name`` must open; with ``start_ts``, each with its scenario's time span."""
    spans = _spans(name, start_ts or 0.0)
    out = []
    for scenario, (begin, end) in spans.items():
        for exp in SCENARIOS[scenario].expected:
            row: dict[str, Any] = {"scenario": scenario, "kind": exp.kind,
                                   "subject": exp.subject, "why": exp.why}  # fmt: skip
            if start_ts is not None:
                row["from_ts"], row["to_ts"] = begin, end
            out.append(row)
    return out


def _spans(name: str, start_ts: float) -> dict[str, tuple[float, float]]:
    spans: dict[str, tuple[float, float]] = {}
    t = start_ts
    for scenario, phase in plan(name):
        if scenario != "warm-up":
            begin = spans.get(scenario, (t, t))[0]
            spans[scenario] = (begin, t + phase.duration_s)
        t += phase.duration_s
    return spans


@dataclass(frozen=True, slots=True)
class Second:
    """The events of one second of event time and where it sits in the plan."""

    scenario: str
    phase: Phase
    paced_s: int
    """Seconds of paced event time before this one (the wall-clock pacing reference)."""
    events: list[dict[str, Any]]
    ts: float = 0.0
    """Event time of this second (every event in it carries this ``ts``)."""


def generate(name: str, *, seed: int = 0, start_ts: float, run_tag: str | None = None
             ) -> Iterator[Second]:  # fmt: skip
    """Every second of scenario ``name`` from ``start_ts``; deterministic for a seed."""
    world = World(random.Random(seed), start_ts, run_tag or f"s{seed}")
    paced, current = 0, ("", "")
    for scenario, phase in plan(name):
        if (scenario, phase.name) != current:  # the two parts of a split phase are one
            current = (scenario, phase.name)
            world.start_phase()
        for _ in range(phase.duration_s):
            ts = start_ts + world.t
            yield Second(scenario, phase, paced, world.step(phase.effects), ts)
            paced += phase.paced
