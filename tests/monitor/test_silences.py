"""Silences in Redis: created with who and why, audited, expired, matched by the engine."""

from __future__ import annotations

import time

import pytest

from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.lifecycle import Lifecycle
from watchfloor.monitor.silences import SilenceError, SilenceStore, active_silences
from watchfloor.security.audit import AuditLog


async def test_a_silence_is_stored_audited_and_quiets_matching_alerts(redis_client) -> None:
    audit = AuditLog(redis_client)
    store = SilenceStore(redis_client, audit)
    silence = await store.create(
        {"rule": "sla.*", "subject": "presale-*"},
        3600,
        actor="ann",
        role="duty_manager",
        reason="planned IVR maintenance",
    )
    (record,) = await audit.read()
    assert (record["action"], record["actor"], record["target"]) == (
        "silence.create",
        "ann",
        silence.id,
    )
    assert record["details"]["reason"] == "planned IVR maintenance"
    lifecycle = Lifecycle()
    lifecycle.silences = await active_silences(redis_client)
    sig = Signal(
        rule="sla.longest_wait", kind="sla", subject="presale-chat", severity="major", title="t"
    )
    (action,) = lifecycle.update([sig], time.time())
    assert (action.notify, action.signal.evidence["silenced_by"]) == (False, silence.id)


async def test_an_expired_silence_no_longer_applies(redis_client) -> None:
    store = SilenceStore(redis_client)
    silence = await store.create({"kind": "outage"}, 600, actor="ann", role="admin", reason="drill")
    assert await store.expire(silence.id, actor="ann", role="admin")
    assert await active_silences(redis_client, time.time() + 1) == []
    assert await store.expire("sil-nope", actor="ann", role="admin") is False


@pytest.mark.parametrize(
    ("matchers", "duration", "reason"),
    [
        ({}, 60, "why"),
        ({"queue": "x"}, 60, "why"),
        ({"rule": ""}, 60, "why"),
        ({"rule": "sla.*"}, 0, "why"),
        ({"rule": "sla.*"}, 30 * 86_400, "why"),
        ({"rule": "sla.*"}, 60, "  "),
    ],
)
async def test_a_silence_needs_matchers_a_bounded_duration_and_a_reason(
    redis_client, matchers, duration, reason
) -> None:
    with pytest.raises(SilenceError):
        await SilenceStore(redis_client).create(
            matchers, duration, actor="a", role="admin", reason=reason
        )
    assert await SilenceStore(redis_client).list() == []
