"""PII recognizers: a table of positives and hard negatives, masking, and a time bound."""

from __future__ import annotations

import time

import pytest

from watchfloor.security.pii import (
    find_pii,
    mask_bank_card,
    mask_email,
    mask_id_card,
    mask_mobile,
    mask_text,
)

# (text, expected findings as (kind, masked)). Valid check digits / Luhn computed offline.
POSITIVES = [
    ("您的手机号是13812345678，请确认", [("mobile", "138****5678")]),
    ("联系电话 138 1234 5678", [("mobile", "138****5678")]),
    ("call me at 138-1234-5678 please", [("mobile", "138****5678")]),
    ("+86 139 0000 1111 是他的号码", [("mobile", "139****1111")]),
    ("+8613900001111", [("mobile", "139****1111")]),
    ("已登记 15912345678", [("mobile", "159****5678")]),
    ("13812345678，订单已发货", [("mobile", "138****5678")]),
    ("0086 138 1234 5678", [("mobile", "138****5678")]),
    ("身份证 110105 19491231 002X", [("id_card", "1101**********002X")]),
    ("卡号 6228 4800 1234 5671", [("bank_card", "6228 **** **** 5671")]),
    ("发到 li.si+shop@qq.com 吧", [("email", "l***@qq.com")]),
    ("身份证号11010519491231002X已核实", [("id_card", "1101**********002X")]),
    ("证件 440306199001011236", [("id_card", "4403**********1236")]),
    ("他的身份证是 320102198512154564 对吧", [("id_card", "3201**********4564")]),
    ("110105200002291112", [("id_card", "1101**********1112")]),
    ("银行卡号 6222021234567891233", [("bank_card", "6222 **** **** 1233")]),
    ("卡号：6222 0212 3456 7891 233", [("bank_card", "6222 **** **** 1233")]),
    ("退款到 6228480012345671", [("bank_card", "6228 **** **** 5671")]),
    ("card 4111 1111 1111 1111", [("bank_card", "4111 **** **** 1111")]),
    ("5522334455667783", [("bank_card", "5522 **** **** 7783")]),
    ("信用卡 3123456789012345678", [("bank_card", "3123 **** **** 5678")]),
    ("邮箱 zhang.san@example.com 已收到", [("email", "z***@example.com")]),
    (
        "手机13812345678，卡号6222021234567891233",
        [("mobile", "138****5678"), ("bank_card", "6222 **** **** 1233")],
    ),
    (
        "13812345678 6222021234567891233",
        [("mobile", "138****5678"), ("bank_card", "6222 **** **** 1233")],
    ),
]

HARD_NEGATIVES = [
    "订单号 2019111112345673 已发货",  # 16 digits, passes Luhn, order context
    "您的订单6222021234567891233已签收",  # passes Luhn with a UnionPay prefix, order context
    "order 4111111111111111 shipped",  # Luhn + Visa prefix, order context
    "订单号码：5522334455667783",
    "2019111112345673",  # date-prefixed serial passing Luhn, no context
    "192837465019283745",  # 18 digits, invalid as an ID, passes Luhn, no card prefix
    "3027118340123456781",  # 19 digits, Luhn, no card prefix
    "快递单号 730192847564738296",
    "运单号：SF1381234567812",
    "SF1234567890123 已揽收",
    "YT6222021234567891233",
    "JD0012345678901-1-1",
    "您的手机138****5678已绑定",
    "身份证1101**********002X",
    "卡号 6222 **** **** 1233",
    "138xxxx5678",
    "z***@example.com",
    "客服热线 400-820-8820",
    "请拨打 800 820 8820",
    "4008208820",
    "日期 2024-11-11 12:30:45",
    "2024年11月11日",
    "金额 ¥13812345678",
    "共计13812345678元",
    "1,381,234,567,800",
    "3.13812345678",
    "流水 1381234567812345678901",  # digits inside a longer run
    "12345678901381234567890",
    "编号 11010519491231002X",
    "110105194913310021",  # invalid birth date
    "110105194912310021",  # wrong check digit
    "客服电话 13800138000",  # company line given on purpose
    "有问题可以打售后电话 13900001111",
    "已为您查到 6222021234567891233 的物流信息",  # order id followed by its context
    "4111111111111111 这个订单已经退款",
    "圆通 YT1234567890123 已到站",
    "座机 010-12345678",
    "1101 **** **** 002X",
    "售后单 4111111111111111 已受理",
    "会员卡号 6222021234567891233",
    "礼品卡 6228480012345671 余额不足",
    "发票号码 6222021234567891233",
    "请发邮件到 service@example.com",  # role mailbox: low confidence only
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_pii_is_found_and_masked(text: str, expected: list[tuple[str, str]]) -> None:
    found = [(f.kind, f.masked) for f in find_pii(text) if f.confidence != "low"]
    assert found == expected


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_are_not_pii(text: str) -> None:
    assert [f for f in find_pii(text) if f.confidence != "low"] == []


def test_precision_and_recall_on_the_table_are_perfect() -> None:
    true_pos = sum(len(find_pii(t)) for t, _ in POSITIVES)
    expected = sum(len(e) for _, e in POSITIVES)
    false_pos = sum(len([f for f in find_pii(t) if f.confidence != "low"]) for t in HARD_NEGATIVES)
    assert (true_pos, false_pos) == (expected, 0)


def test_context_word_raises_confidence() -> None:
    assert find_pii("手机13812345678")[0].confidence == "high"
    assert find_pii("13812345678")[0].confidence == "medium"
    assert find_pii("卡号 6222021234567891233")[0].confidence == "high"


@pytest.mark.parametrize(
    ("func", "value", "masked"),
    [
        (mask_mobile, "13812345678", "138****5678"),
        (mask_mobile, "+86 138-1234-5678", "138****5678"),
        (mask_id_card, "11010519491231002x", "1101**********002X"),
        (mask_bank_card, "6222 0212 3456 7891 233", "6222 **** **** 1233"),
        (mask_email, "li@corp.cn", "l***@corp.cn"),
    ],
)
def test_masking_keeps_only_the_ends(func, value: str, masked: str) -> None:  # type: ignore[no-untyped-def]
    assert func(value) == masked


def test_mask_text_replaces_every_finding_and_keeps_the_rest() -> None:
    text = "手机13812345678，身份证11010519491231002X，订单2019111112345673"
    assert mask_text(text) == "手机138****5678，身份证1101**********002X，订单2019111112345673"


@pytest.mark.parametrize(
    "text",
    [
        "1 " * 50_000,
        "1-" * 50_000,
        "1" * 100_000,
        "a" * 100_000 + "@",
        ("a." * 50_000) + "@b",
        "x@" + "a." * 40_000,
        "13812345678 " * 8_000,
        "*" * 50_000 + "1" * 50_000,
    ],
)
def test_recognizers_run_in_linear_time_on_pathological_input(text: str) -> None:
    started = time.perf_counter()
    find_pii(text)
    assert time.perf_counter() - started < 1.5
