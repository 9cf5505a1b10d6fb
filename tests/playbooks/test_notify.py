"""Notifiers against a real local receiver that checks the robots' signatures."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.playbooks.helpers import DINGTALK_SECRET, FEISHU_SECRET
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.actions.notify import (
    Message,
    Notifier,
    Target,
    dingtalk_sign,
    feishu_sign,
)

MESSAGE = Message("网络中断 Outage", "hz-idc down", {"run": "RUN-1", "purpose": "action"})


def notifier(base: str, drill_target: str | None = None) -> Notifier:
    targets = {
        "ding": Target("ding", "dingtalk", f"{base}/dingtalk?access_token=t", DINGTALK_SECRET),
        "ding-bad": Target("ding-bad", "dingtalk", f"{base}/dingtalk?access_token=t", "wrong"),
        "fei": Target("fei", "feishu", f"{base}/feishu", FEISHU_SECRET),
        "fei-bad": Target("fei-bad", "feishu", f"{base}/feishu", "wrong"),
        "wecom": Target("wecom", "wecom", f"{base}/wecom"),
        "slack": Target("slack", "slack", f"{base}/slack"),
        "json": Target("json", "json", f"{base}/json"),
    }
    return Notifier(
        targets,
        drill_target=drill_target,
        policy=RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=2),
    )


@pytest.mark.parametrize(
    ("target", "kind", "ok", "check"),
    [
        ("ding", "dingtalk", True, lambda b: b["markdown"]["title"] == "网络中断 Outage"),
        ("fei", "feishu", True, lambda b: b["content"]["text"].endswith("hz-idc down")),
        (
            "wecom",
            "wecom",
            True,
            lambda b: (
                b["msgtype"] == "markdown" and "**网络中断 Outage**" in b["markdown"]["content"]
            ),
        ),
        ("slack", "slack", True, lambda b: b["text"] == "*网络中断 Outage*\nhz-idc down"),
        ("json", "json", True, lambda b: b["run"] == "RUN-1" and b["text"] == "hz-idc down"),
    ],
)
async def test_each_webhook_kind_is_delivered_in_its_format(
    receiver: Any, target: str, kind: str, ok: bool, check: Any
) -> None:
    rec, base = receiver
    async with aiohttp.ClientSession() as session:
        result = await notifier(base).send(session, target, MESSAGE, key="k1", drill=False)
    assert result.ok is ok and result.attempts == 1
    got = rec.of(kind)
    assert len(got) == 1 and check(got[0]["body"]) and got[0]["key"] == "k1"


@pytest.mark.parametrize("target", ["ding-bad", "fei-bad"])
async def test_a_wrong_robot_secret_fails_without_retrying(receiver: Any, target: str) -> None:
    rec, base = receiver
    async with aiohttp.ClientSession() as session:
        result = await notifier(base).send(session, target, MESSAGE, key="k", drill=False)
    assert not result.ok and result.attempts == 1 and "robot error" in result.detail
    assert len(rec.rejected) == 1 and rec.received == []


async def test_unknown_target_fails_and_drill_is_redirected_or_suppressed(receiver: Any) -> None:
    rec, base = receiver
    async with aiohttp.ClientSession() as session:
        missing = await notifier(base).send(session, "nobody", MESSAGE, key="k", drill=False)
        drilled = await notifier(base, f"{base}/drill").send(
            session, "ding", MESSAGE, key="k", drill=True
        )
        quiet = await notifier(base).send(session, "ding", MESSAGE, key="k", drill=True)
    assert not missing.ok and "no webhook named 'nobody'" in missing.detail
    assert drilled.ok and [r["kind"] for r in rec.received] == ["drill"]
    assert quiet.ok and quiet.suppressed


async def test_an_unreachable_receiver_is_retried_then_reported(unused_tcp_port: int) -> None:
    n = Notifier(
        {"j": Target("j", "json", f"http://127.0.0.1:{unused_tcp_port}/x")},
        policy=RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=1),
    )
    async with aiohttp.ClientSession() as session:
        result = await n.send(session, "j", MESSAGE, key="k", drill=False)
    assert not result.ok and result.attempts == 2 and "ClientConnectorError" in result.detail


def test_signatures_match_the_robots_documented_examples() -> None:
    # Both documented algorithms, recomputed independently of the implementation.
    import base64
    import hashlib
    import hmac

    ding = base64.b64encode(hmac.new(b"SEC1", b"1700000000000\nSEC1", hashlib.sha256).digest())
    fei = base64.b64encode(hmac.new(b"1700000000\nsec", b"", hashlib.sha256).digest())
    assert dingtalk_sign("SEC1", 1700000000000) == ding.decode()
    assert feishu_sign("sec", 1700000000) == fei.decode()
