"""Leak detector: agent messages and data access -> signals, including the quiet cases."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from watchfloor.core.events import AgentMessage, DataAccess, Event
from watchfloor.monitor.detectors.leak import LeakDetector
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import load_rules

# 2025-11-13 10:00:00 China Standard Time (02:00 UTC): inside working hours.
DAY = 1_762_999_200.0
NIGHT = DAY - 8 * 3600  # 02:00 local


def msg(text: str, direction: str = "to_customer", agent: str = "a-17", at: float = DAY) -> Event:
    return AgentMessage(
        ts=at,
        source="chat",
        agent_id=agent,
        conversation_id="conv-1",
        channel="chat",
        direction=direction,
        text=text,
    )


def access(
    action: str, records: int, at: float = DAY, actor: str = "u-ops", ok: bool | None = None
) -> Event:
    return DataAccess(
        ts=at,
        source="crm",
        actor=actor,
        action=action,
        resource="customers",
        records=records,
        ok=ok,
    )


def routine_views(
    actor: str = "u-ops", hours: float = 3, per_min: int = 5, start: float = DAY
) -> list[Event]:
    return [access("view", per_min, at=start + k * 60, actor=actor) for k in range(int(hours * 60))]


CASES: list[tuple[str, Callable[[], list[Event]], list[tuple[str, str, str]]]] = [
    (
        "an agent sending a customer's ID number",
        lambda: [msg("您的身份证号是11010519491231002X，已登记")],
        [("leak.pii_in_message", "a-17", "major")],
    ),
    (
        "an agent sending a bank card number",
        lambda: [msg("退款卡号 6222021234567891233")],
        [("leak.pii_in_message", "a-17", "major")],
    ),
    (
        "an agent sending a mobile number internally",
        lambda: [msg("客户电话 138 1234 5678 回访一下", direction="internal")],
        [("leak.pii_in_message", "a-17", "minor")],
    ),
    (
        "ID and card together are critical",
        lambda: [msg("身份证11010519491231002X 卡号6222021234567891233")],
        [("leak.pii_in_message", "a-17", "critical")],
    ),
    (
        "three mobiles in a few minutes are critical",
        lambda: [msg(f"电话1381234567{k}", at=DAY + 60 * k) for k in range(3)],
        [("leak.pii_in_message", "a-17", "critical")],
    ),
    (
        "a customer sending their own ID",
        lambda: [msg("我的身份证11010519491231002X", direction="from_customer")],
        [],
    ),
    (
        "a customer sending their own card and mobile",
        lambda: [msg("卡号6222021234567891233 手机13812345678", direction="from_customer")],
        [],
    ),
    ("an order number passing Luhn", lambda: [msg("您的订单号 6222021234567891233 已发货")], []),
    ("a date-prefixed order id passing Luhn", lambda: [msg("单号2019111112345673请核对")], []),
    ("a waybill number", lambda: [msg("顺丰运单号 SF1381234567812，请查收")], []),
    ("masked numbers", lambda: [msg("尾号1234的银行卡 6222 **** **** 1233，手机138****5678")], []),
    ("the hotline", lambda: [msg("如有问题请拨打客服热线 400-820-8820")], []),
    ("dates, times and amounts", lambda: [msg("2025-11-11 12:30 下单，实付 ¥1381234.56 元")], []),
    ("a role mailbox", lambda: [msg("请发邮件到 service@shop.example")], []),
    (
        "a bulk export of 5000 records",
        lambda: [access("export", 5000)],
        [("leak.bulk_export", "u-ops", "major")],
    ),
    (
        "a bulk download of 20000 records is critical",
        lambda: [access("download", 20000)],
        [("leak.bulk_export", "u-ops", "critical")],
    ),
    ("an export of 999 records", lambda: [access("export", 999)], []),
    (
        "a refused export is minor",
        lambda: [access("export", 5000, ok=False)],
        [("leak.bulk_export", "u-ops", "minor")],
    ),
    (
        "viewing 50x the usual records in 10 minutes",
        lambda: (
            routine_views() + [access("view", 300, at=DAY + 3 * 3600 + k * 30) for k in range(6)]
        ),
        [("leak.unusual_access", "u-ops", "major")],
    ),
    ("routine viewing at the usual pace", lambda: routine_views(hours=4), []),
    ("a busy but usual actor", lambda: routine_views(per_min=60, hours=4), []),
    (
        "a new actor viewing 400 records",
        lambda: [access("view", 100, at=DAY + k * 60) for k in range(4)],
        [],
    ),
    (
        "a new actor viewing 1500 records in 10 minutes",
        lambda: [access("view", 300, at=DAY + k * 60) for k in range(5)],
        [("leak.unusual_access", "u-ops", "major")],
    ),
    (
        "viewing 50 records at 02:00",
        lambda: [access("view", 25, at=NIGHT), access("view", 25, at=NIGHT + 60)],
        [("leak.off_hours", "u-ops", "minor")],
    ),
    (
        "an export at 02:00 is one bulk export incident that says it was off hours",
        lambda: [access("export", 2000, at=NIGHT)],
        [("leak.bulk_export", "u-ops", "major")],
    ),
    (
        "a small export at 02:00 is off hours",
        lambda: [access("export", 300, at=NIGHT)],
        [("leak.off_hours", "u-ops", "major")],
    ),
    ("a single record looked up at 02:00", lambda: [access("view", 1, at=NIGHT)], []),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_leak_cases(name: str, events: Callable[[], list[Event]], expected: list) -> None:
    evs = events()
    trace = drive(LeakDetector(load_rules()), evs, until=max(e.ts for e in evs) + 120)
    assert trace.fired() == expected


def test_leak_evidence_holds_masked_values_only() -> None:
    text = "身份证11010519491231002X 卡号6222021234567891233 手机13812345678"
    trace = drive(LeakDetector(load_rules()), [msg(text)], until=DAY + 60)
    evidence = json.dumps(trace.seen["leak.pii_in_message|a-17"].last.evidence, ensure_ascii=False)
    for raw in ("11010519491231002X", "6222021234567891233", "13812345678", text):
        assert raw not in evidence
    assert "1101**********002X" in evidence and "138****5678" in evidence


def test_a_leak_episode_ends_after_the_hold_time() -> None:
    trace = drive(LeakDetector(load_rules()), [msg("手机13812345678")], until=DAY + 700)
    assert trace.fired() == [("leak.pii_in_message", "a-17", "minor")]
    assert trace.active_at_end == []


def test_exempt_actors_and_working_hours_are_configurable() -> None:
    rules = load_rules(text='[leak]\nexempt_actors = ["etl"]\nworking_hours = "00:00-24:00"')
    events = [access("export", 50000, actor="etl"), access("view", 500, at=NIGHT)]
    trace = drive(LeakDetector(rules), events, until=DAY + 60)
    assert trace.fired() == []


def test_leak_state_round_trips() -> None:
    first = LeakDetector(load_rules())
    drive(first, [msg("手机13812345678"), access("export", 5000)], until=DAY + 30)
    second = LeakDetector(load_rules())
    second.restore(json.loads(json.dumps(first.snapshot())))
    trace = drive(second, [], start=DAY + 31, until=DAY + 90)
    assert trace.fired() == [
        ("leak.bulk_export", "u-ops", "major"),
        ("leak.pii_in_message", "a-17", "minor"),
    ]


def test_a_bulk_export_at_night_says_so_in_its_one_incident() -> None:
    events = [access("export", 2000, at=NIGHT)]
    trace = drive(LeakDetector(load_rules()), events, until=events[0].ts + 60)
    signal = trace.seen["leak.bulk_export|u-ops"].last
    assert signal.evidence["off_hours"] is True
    assert "outside working hours" in signal.title
