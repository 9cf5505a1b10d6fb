"""Producer signatures: fixed vectors, tolerance, rotation, tampering, replay cache."""

from __future__ import annotations

import asyncio
import stat

import pytest

from watchfloor.core import keys
from watchfloor.security.signing import (
    SignatureError,
    SigningKeys,
    seen_before,
    seen_many,
    sign,
    verify,
)

# Frozen vectors, computed once (and cross-checked with
# `printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac whsec_watchfloor_test_vector`).
SECRET = "whsec_watchfloor_test_vector"
SECOND = "whsec_second"
BODY = b'[{"type":"heartbeat","ts":1700000000,"source":"acd-1"}]'
T = 1700000000
VECTORS = [
    (BODY, SECRET, "77b9acbfcafed5dd0a4c0d38bc9d1ac601019ee86020014c97931d8877674a38"),
    (BODY, SECOND, "80062fce1750977f28636de2f9e6fd8b2115011cf6f12f05d7c6d296171d8600"),
    (b"", SECRET, "75179cff13cccf3b8922e72f7b76c52f64ccc32b41c87a76509bfdebdaed8436"),
]


@pytest.mark.parametrize(("body", "secret", "hexdigest"), VECTORS)
def test_signatures_match_the_frozen_vectors(body, secret, hexdigest):
    assert sign(body, secret, T) == f"t={T},v1={hexdigest}"
    verify(body, f"t={T},v1={hexdigest}", [secret], now=T)


def test_a_producer_in_rotation_sends_one_v1_per_secret():
    header = sign(BODY, [SECRET, SECOND], T)
    assert header == f"t={T},v1={VECTORS[0][2]},v1={VECTORS[1][2]}"
    verify(BODY, header, [SECOND], now=T)
    verify(BODY, header, [SECRET], now=T)


@pytest.mark.parametrize(
    ("held", "accepted"),
    [([SECRET], True), ([SECRET, SECOND], True), ([SECOND, SECRET], True), ([SECOND], False)],
)
def test_the_collector_accepts_any_secret_it_holds_for_the_source(held, accepted):
    header = sign(BODY, SECRET, T)
    if accepted:
        verify(BODY, header, held, now=T)
    else:
        with pytest.raises(SignatureError, match="does not match"):
            verify(BODY, header, held, now=T)


@pytest.mark.parametrize(
    ("now", "ok"),
    [(T, True), (T + 300, True), (T - 300, True), (T + 301, False), (T - 301, False),
     (T + 86400, False)],
)  # fmt: skip
def test_timestamps_outside_the_300_s_tolerance_are_refused(now, ok):
    header = sign(BODY, SECRET, T)
    if ok:
        verify(BODY, header, [SECRET], now=now)
    else:
        with pytest.raises(SignatureError, match="tolerance"):
            verify(BODY, header, [SECRET], now=now)


@pytest.mark.parametrize(
    "body",
    [
        BODY.replace(b"acd-1", b"acd-2"),
        BODY + b" ",
        BODY[:-1],
        b"",
    ],
)
def test_a_tampered_body_is_refused(body):
    with pytest.raises(SignatureError, match="does not match"):
        verify(body, sign(BODY, SECRET, T), [SECRET], now=T)


def test_a_moved_timestamp_is_refused():
    header = sign(BODY, SECRET, T).replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(BODY, header, [SECRET], now=T)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("x" * 3000, "oversized"),
        (f"v1={VECTORS[0][2]}", "no timestamp"),
        (f"t={T}", "no v1"),
        (f"t={T},v0={VECTORS[0][2]}", "no v1"),
        (f"t=-5,v1={VECTORS[0][2]}", "timestamp"),
        (f"t=1.5,v1={VECTORS[0][2]}", "timestamp"),
        (f"t={T},t={T},v1={VECTORS[0][2]}", "timestamp"),
        (f"t={T},v1={VECTORS[0][2].upper()}", "hex"),
        (f"t={T},v1=abc", "hex"),
        (f"t={T};v1={VECTORS[0][2]}", "timestamp"),
        ("garbage", "malformed"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(BODY, header, [SECRET], now=T)


def test_a_source_without_secrets_cannot_verify():
    with pytest.raises(SignatureError, match="no signing secret"):
        verify(BODY, sign(BODY, SECRET, T), [], now=T)


def test_added_secrets_are_loaded_by_source_with_private_file_modes(data_dir):
    first = SigningKeys.add(data_dir, "acd-1")
    second = SigningKeys.add(data_dir, "acd-1")
    other = SigningKeys.add(data_dir, "crm-log")
    loaded = SigningKeys.load(data_dir)
    assert loaded.secrets_for("acd-1") == [first, second]
    assert loaded.secrets_for("crm-log") == [other]
    assert loaded.secrets_for("unknown") == []
    assert loaded.sources() == ["acd-1", "crm-log"]
    path = data_dir / "keys" / "signing" / "acd-1.secrets"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.startswith("whsec_") and len(first) > 40


def test_rotation_keeps_old_secrets_valid_until_retired(data_dir):
    old = SigningKeys.add(data_dir, "acd-1")
    new = SigningKeys.add(data_dir, "acd-1")
    verify(BODY, sign(BODY, old, T), SigningKeys.load(data_dir).secrets_for("acd-1"), now=T)
    assert SigningKeys.retire(data_dir, "acd-1", keep=1) == 1
    held = SigningKeys.load(data_dir).secrets_for("acd-1")
    assert held == [new]
    with pytest.raises(SignatureError):
        verify(BODY, sign(BODY, old, T), held, now=T)


def test_a_missing_signing_directory_means_no_secrets(data_dir):
    assert SigningKeys.load(data_dir).sources() == []


@pytest.mark.parametrize("source", ["../evil", "a/b", "", ".hidden"])
def test_source_names_cannot_escape_the_signing_directory(data_dir, source):
    with pytest.raises(SignatureError, match="bad source"):
        SigningKeys.add(data_dir, source)


async def test_the_replay_cache_accepts_an_event_id_once_per_source(redis_client):
    assert await seen_before(redis_client, "acd-1", "e-1") is False
    assert await seen_before(redis_client, "acd-1", "e-1") is True
    assert await seen_before(redis_client, "acd-2", "e-1") is False
    ttl = await redis_client.ttl(keys.signature_replay("acd-1"))
    assert 590 <= ttl <= 600


async def test_the_replay_cache_answers_a_whole_batch_in_one_call(redis_client):
    await seen_before(redis_client, "acd-1", "b")
    flags = await seen_many(redis_client, "acd-1", ["a", "b", "c", "a"])
    assert flags == [False, True, False, True]
    assert await seen_many(redis_client, "acd-1", []) == []


async def test_concurrent_replays_of_one_event_are_accepted_exactly_once(redis_client):
    results = await asyncio.gather(*(seen_before(redis_client, "s", "e") for _ in range(10)))
    assert sorted(results) == [False] + [True] * 9


async def test_replay_ids_are_forgotten_after_the_window(redis_client):
    assert await seen_before(redis_client, "acd-1", "e-1", tolerance_s=0.1) is False
    await asyncio.sleep(0.3)
    assert await seen_before(redis_client, "acd-1", "e-1", tolerance_s=0.1) is False
