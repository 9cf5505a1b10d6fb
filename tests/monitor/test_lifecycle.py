"""The alert lifecycle: pending, firing, resolving, flapping, caps, inhibition, silences."""

from __future__ import annotations

import pytest

from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.lifecycle import ROLLUP_SUBJECT, Lifecycle, LifecycleConfig, Silence

T = 1_763_800_000.0


def sig(
    subject: str = "presale-chat",
    *,
    rule: str = "sla.queue",
    kind: str = "sla",
    severity: str = "major",
    for_s: float = 0,
    keep: float = 0,
    related=(),
) -> Signal:
    return Signal(
        rule=rule,
        kind=kind,
        subject=subject,
        severity=severity,
        title="t",
        evidence={"x": 1},
        for_s=for_s,
        keep_firing_for_s=keep,
        related=related,
    )


def drive(lifecycle: Lifecycle, timeline: list[list[Signal]]) -> list[tuple]:
    """One list of active signals per second; returns (second, op, reason, notify)."""
    out = []
    for second, signals in enumerate(timeline):
        for a in lifecycle.update(signals, T + second):
            out.append((second, a.op, a.reason, a.notify))
    return out


ON, OFF = "on", "off"


def pattern(text: str, **kw) -> list[list[Signal]]:
    return [[sig(**kw)] if c == "1" else [] for c in text]


@pytest.mark.parametrize(
    ("case", "timeline", "kw", "expected"),
    [
        (
            "fires at once without a pending time",
            "1110",
            {},
            [(0, "fire", "opened", True), (3, "clear", "cleared", False)],
        ),
        (
            "waits for the pending time",
            "11110",
            {"for_s": 3},
            [(3, "fire", "opened", True), (4, "clear", "cleared", False)],
        ),
        ("a blip shorter than the pending time never fires", "110111", {"for_s": 3}, []),
        (
            "keeps firing for the resolving time",
            "1100000",
            {"keep": 3},
            [(0, "fire", "opened", True), (5, "clear", "cleared", False)],
        ),
        (
            "returning while resolving is the same alert",
            "1101100000",
            {"keep": 3},
            [(0, "fire", "opened", True), (8, "clear", "cleared", False)],
        ),
        (
            "flapping is held open and not re-notified",
            "1010101010" + "1" * 3 + "0" * 700,
            {},
            [
                (0, "fire", "opened", True),
                (1, "clear", "cleared", False),
                (2, "fire", "opened", True),
                (3, "clear", "cleared", False),
                (4, "fire", "opened", True),
                # The 6th flip: flapping, held open (no clear, no new incident)...
                (5, "note", "flapping", False),
                # ...until its flips have left the 600 s window.
                (609, "note", "settled", False),
                (609, "clear", "cleared", False),
            ],
        ),
    ],
)
def test_lifecycle_table(case: str, timeline: str, kw: dict, expected: list) -> None:
    assert drive(Lifecycle(), pattern(timeline, **kw)) == expected


def test_severity_may_rise_but_a_lower_severity_is_no_news() -> None:
    timeline = [
        [sig(severity="major")],
        [sig(severity="minor")],
        [sig(severity="critical")],
        [sig(severity="critical")],
        [sig(severity="major")],
    ]
    assert drive(Lifecycle(), timeline) == [
        (0, "fire", "opened", True),
        (2, "fire", "severity", True),
    ]


def test_new_incidents_over_the_cap_are_rolled_into_one() -> None:
    lifecycle = Lifecycle(LifecycleConfig(cap_per_minute=3))
    signals = [sig(f"q{i}") for i in range(7)]
    actions = lifecycle.update(signals, T)
    opened = [a for a in actions if a.signal.subject != ROLLUP_SUBJECT]
    rolled = [a for a in actions if a.signal.subject == ROLLUP_SUBJECT]
    assert [a.signal.subject for a in opened] == ["q0", "q1", "q2"]
    assert [a.notify for a in rolled] == [True, False, False, False]
    assert rolled[-1].signal.evidence["subjects_affected"] == 4
    assert rolled[-1].signal.evidence["subjects"] == ["q3", "q4", "q5", "q6"]
    # The next minute, the cap starts again.
    later = lifecycle.update([*signals, sig("q7")], T + 60)
    assert [a.signal.subject for a in later] == ["q7"]
    # When the rolled-up subjects clear, the roll-up incident clears once.
    cleared = lifecycle.update(signals[:3], T + 61)
    assert [(a.op, a.signal.subject) for a in cleared] == [
        ("clear", "q7"),
        ("clear", ROLLUP_SUBJECT),
    ]


@pytest.mark.parametrize(
    ("case", "inhibit", "outage", "related", "kind", "inhibited"),
    [
        ("configured dependency down", {"presale-*": ["crm"]}, "crm", (), "sla", ["crm"]),
        ("dependency named by the detector", {}, "crm", ("crm",), "surge", ["crm"]),
        ("another component down", {"presale-*": ["crm"]}, "ivr", (), "sla", []),
        ("no outage at all", {"presale-*": ["crm"]}, None, (), "sla", []),
        ("opinion is never inhibited", {"presale-*": ["crm"]}, "crm", (), "opinion", []),
    ],
)
def test_an_outage_inhibits_the_notifications_of_queues_that_depend_on_it(
    case, inhibit, outage, related, kind, inhibited
) -> None:
    lifecycle = Lifecycle(LifecycleConfig(inhibit=inhibit))
    signals = [sig(related=related, kind=kind, rule=f"{kind}.x")]
    if outage:
        signals.append(sig(outage, rule="outage.component", kind="outage", severity="critical"))
    actions = {a.signal.subject: a for a in lifecycle.update(signals, T)}
    queue = actions["presale-chat"]
    assert queue.op == "fire", "kept visible"
    assert queue.notify is (not inhibited)
    assert queue.signal.evidence.get("inhibited_by", []) == inhibited


@pytest.mark.parametrize(
    ("matchers", "starts", "ends", "silenced"),
    [
        ({"rule": "sla.*"}, T - 10, T + 10, True),
        ({"kind": "sla", "subject": "presale-*"}, T - 10, T + 10, True),
        ({"subject": "aftersale-*"}, T - 10, T + 10, False),
        ({"rule": "sla.*"}, T - 10, T, False),  # expired
        ({"rule": "sla.*"}, T + 5, T + 10, False),  # not started
    ],
)
def test_a_matching_active_silence_keeps_the_alert_visible_but_quiet(
    matchers, starts, ends, silenced
) -> None:
    lifecycle = Lifecycle()
    lifecycle.silences = [Silence("s1", matchers, starts, ends, "ann", "maintenance")]
    (action,) = lifecycle.update([sig()], T)
    assert action.notify is not silenced
    assert ("silenced_by" in action.signal.evidence) is silenced


def test_clear_resolves_only_kinds_configured_for_auto_resolve() -> None:
    lifecycle = Lifecycle()
    lifecycle.update([sig(), sig("a1", rule="leak.pii", kind="leak")], T)
    clears = {a.signal.kind: a.auto_resolve for a in lifecycle.update([], T + 1)}
    assert clears == {"sla": True, "leak": False}


def test_the_lifecycle_state_round_trips_through_a_snapshot() -> None:
    import msgpack

    first = Lifecycle(LifecycleConfig(cap_per_minute=1))
    timeline = pattern("11111100000", for_s=2, keep=2)
    first.update([sig("other"), sig("more")], T - 1)
    drive(first, timeline[:4])
    second = Lifecycle(LifecycleConfig(cap_per_minute=1))
    second.restore(msgpack.unpackb(msgpack.packb(first.snapshot()), raw=False))
    assert second.states() == first.states()
    rest_a = [(a.op, a.signal.fingerprint) for s in timeline[4:] for a in first.update(s, T + 9)]
    rest_b = [(a.op, a.signal.fingerprint) for s in timeline[4:] for a in second.update(s, T + 9)]
    assert rest_a == rest_b


def test_a_flapping_alert_absorbs_its_next_episodes_without_a_new_fire() -> None:
    lifecycle = Lifecycle(LifecycleConfig(flap_threshold=4))
    got = drive(lifecycle, pattern("1000100010001000", keep=1))
    # The 4th flip (second 5) makes it flap: held open from then on.
    assert got == [
        (0, "fire", "opened", True),
        (2, "clear", "cleared", False),
        (4, "fire", "opened", True),
        (5, "note", "flapping", False),
    ]
    assert lifecycle.states() == {"sla.queue|presale-chat": "flapping"}


def test_an_opened_fire_carries_when_the_condition_was_first_seen() -> None:
    lifecycle = Lifecycle()
    actions = [
        a
        for s, sigs in enumerate(pattern("1111", for_s=3, severity="major"))
        for a in lifecycle.update(sigs, T + s)
    ]
    assert [(a.at, a.first_at) for a in actions] == [(T + 3, T)]


def with_conditions(severity: str, *names: str) -> Signal:
    conditions = [{"condition": n, "severity": severity} for n in names]
    return Signal(
        rule="sla.queue",
        kind="sla",
        subject="presale-chat",
        severity=severity,
        title="t",
        evidence={"conditions": conditions},
    )


def test_a_condition_joining_a_firing_problem_updates_its_incident_quietly() -> None:
    lifecycle = Lifecycle()
    timeline = [
        [with_conditions("major", "longest_wait")],
        [with_conditions("major", "longest_wait")],
        [with_conditions("major", "longest_wait", "abandon_rate")],  # joins: quiet update
        [with_conditions("major", "abandon_rate")],  # one leaves: nothing
        [with_conditions("critical", "abandon_rate", "service_level")],  # worse: notified
    ]
    assert drive(lifecycle, timeline) == [
        (0, "fire", "opened", True),
        (2, "fire", "conditions", False),
        (4, "fire", "severity", True),
    ]


def test_a_condition_that_flapped_while_pending_still_tells_people_once_when_it_opens() -> None:
    # Flickering while pending (for 3 s) makes it flapping before it ever fired; when it
    # finally holds long enough, its incident opens and people hear of it: once.
    lifecycle = Lifecycle(LifecycleConfig(flap_threshold=4))
    got = drive(lifecycle, pattern("1010101011111" + "0" * 3 + "1111", for_s=3))
    fires = [g for g in got if g[1] == "fire"]
    assert fires[0][2:] == ("opened", True)
    assert all(not notify for _, _, _, notify in fires[1:])
    assert lifecycle.states() == {"sla.queue|presale-chat": "flapping"}


def test_a_flapping_incident_that_gets_worse_is_notified_again() -> None:
    lifecycle = Lifecycle(LifecycleConfig(flap_threshold=4))
    timeline = [*pattern("10101010"), [sig(severity="critical")]]
    got = drive(lifecycle, timeline)
    assert got[-1][1:] == ("fire", "severity", True)


@pytest.mark.parametrize(
    ("kind", "reopens"),
    [("sla", True), ("leak", False)],  # a leak resolved by a person stays resolved
)
def test_a_hand_resolve_reopens_at_the_first_evaluation_after_it_that_still_holds(
    kind: str, reopens: bool
) -> None:
    import msgpack

    first = Lifecycle()
    s = sig(kind=kind, rule=f"{kind}.x")
    assert [a.reason for a in first.update([s], T)] == ["opened"]
    assert first.resolved_by_hand(s.fingerprint, "INC-1", T + 3.5) is reopens
    lifecycle = Lifecycle()  # the mark survives a restart from the checkpoint
    lifecycle.restore(msgpack.unpackb(msgpack.packb(first.snapshot()), raw=False))
    assert lifecycle.update([s], T + 3) == []  # known to the person who resolved it
    actions = lifecycle.update([s], T + 4)
    if not reopens:
        assert actions == []
        return
    [reopen] = actions
    assert (reopen.op, reopen.reason, reopen.notify) == ("fire", "reopened", True)
    assert reopen.signal.evidence == {"x": 1, "reopened_from": "INC-1"}
    assert lifecycle.update([s], T + 5) == []  # once


def test_a_hand_resolve_stands_when_the_condition_clears_first() -> None:
    lifecycle = Lifecycle()
    s = sig()
    lifecycle.update([s], T)
    assert lifecycle.resolved_by_hand(s.fingerprint, "INC-1", T + 1.5)
    assert [a.op for a in lifecycle.update([], T + 1)] == ["clear"]
    [again] = lifecycle.update([s], T + 2)  # a new episode later is a new incident, unlinked
    assert (again.reason, "reopened_from" in again.signal.evidence) == ("opened", False)
