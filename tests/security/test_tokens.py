"""TokenStore against a real Redis: shown once, stored hashed, unique live names."""

from __future__ import annotations

import asyncio
import hashlib

import msgpack
import pytest

from watchfloor.core import keys
from watchfloor.security.tokens import (
    FORGED_KEY,
    Principal,
    TokenConflict,
    TokenError,
    TokenStore,
    hash_token,
    load_seal,
    parse_duration,
)


async def test_a_created_token_verifies_as_its_name_and_role(redis_client):
    store = TokenStore(redis_client)
    token, record = await store.create("duty-1", "duty_manager")
    assert token.startswith("wf_") and len(token) == 3 + 43
    assert record["name"] == "duty-1" and record["role"] == "duty_manager"
    assert await store.verify(token) == Principal("duty-1", "duty_manager")


async def test_redis_holds_only_the_sha256_of_the_token(redis_client):
    store = TokenStore(redis_client)
    token, _ = await store.create("probe", "producer")
    stored = await redis_client.hgetall(keys.TOKENS)
    assert list(stored) == [hashlib.sha256(token.encode()).hexdigest().encode()]
    dump = b"".join(list(stored) + list(stored.values()))
    assert token.encode() not in dump and token[3:].encode() not in dump


@pytest.mark.parametrize(
    "token",
    ["", "wf_", "wf_nope", "x" * 300, "Bearer wf_abc"],
)
async def test_unknown_tokens_do_not_verify(redis_client, token):
    store = TokenStore(redis_client)
    await store.create("someone", "viewer")
    assert await store.verify(token) is None


async def test_an_expired_token_no_longer_verifies_and_its_name_is_free_again(redis_client):
    store = TokenStore(redis_client)
    token, record = await store.create("short", "viewer", ttl_s=0.2)
    assert record["expires"] == pytest.approx(record["created"] + 0.2)
    assert await store.verify(token) is not None
    await asyncio.sleep(0.3)
    assert await store.verify(token) is None
    assert (await store.list())[0]["state"] == "expired"
    await store.create("short", "viewer")


async def test_a_revoked_token_no_longer_verifies(redis_client):
    store = TokenStore(redis_client)
    token, _ = await store.create("leaver", "oncall")
    assert await store.revoke("leaver") is True
    assert await store.verify(token) is None
    assert await store.revoke("leaver") is False


async def test_revoking_an_unknown_name_reports_false(redis_client):
    assert await TokenStore(redis_client).revoke("nobody") is False


async def test_a_live_name_cannot_be_issued_twice_but_can_after_revocation(redis_client):
    store = TokenStore(redis_client)
    first, _ = await store.create("console", "viewer")
    with pytest.raises(TokenConflict):
        await store.create("console", "admin")
    await store.revoke("console")
    second, _ = await store.create("console", "viewer")
    assert await store.verify(first) is None
    assert await store.verify(second) == Principal("console", "viewer")


async def test_concurrent_creations_of_one_name_yield_exactly_one_token(redis_client):
    store = TokenStore(redis_client)
    results = await asyncio.gather(
        *(store.create("race", "viewer") for _ in range(8)), return_exceptions=True
    )
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, TokenConflict) for r in results) == 7


@pytest.mark.parametrize(
    ("name", "role", "ttl_s", "message"),
    [
        ("ok", "root", None, "unknown role"),
        ("ok", "", None, "unknown role"),
        ("", "viewer", None, "bad token name"),
        ("has space", "viewer", None, "bad token name"),
        ("-dash-first", "viewer", None, "bad token name"),
        ("x" * 65, "viewer", None, "bad token name"),
        ("ok", "viewer", 0, "bad ttl_s"),
        ("ok", "viewer", -5, "bad ttl_s"),
        ("ok", "viewer", "8h", "bad ttl_s"),
    ],
)
async def test_bad_names_roles_and_ttls_are_refused(redis_client, name, role, ttl_s, message):
    with pytest.raises(TokenError, match=message):
        await TokenStore(redis_client).create(name, role, ttl_s)
    assert await redis_client.hlen(keys.TOKENS) == 0


async def test_the_list_shows_short_ids_and_states_but_never_hashes(redis_client):
    store = TokenStore(redis_client)
    token, _ = await store.create("a", "viewer")
    await store.create("b", "admin")
    await store.revoke("b")
    rows = await store.list()
    assert [(r["name"], r["state"]) for r in rows] == [("a", "active"), ("b", "revoked")]
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert rows[0]["id"] == digest[:10]
    flat = msgpack.packb(rows)
    assert digest.encode() not in flat and token.encode() not in flat
    assert set(rows[0]) == {"id", "name", "role", "created", "expires", "revoked", "state"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("45s", 45),
        ("30m", 1800),
        ("8h", 28800),
        ("7d", 604800),
        ("2w", 1209600),
        ("1.5h", 5400),
    ],
)
def test_durations_are_read_in_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "8x", "-1h", "0", "8 hours"])
def test_bad_durations_are_refused(text):
    with pytest.raises(TokenError):
        parse_duration(text)


async def test_a_record_written_straight_into_redis_is_refused_and_reported(
    redis_client, data_dir, caplog
):
    store = TokenStore(redis_client, seal=load_seal(data_dir))
    real, _ = await store.create("duty-lee", "duty_manager")
    forged_token = "wf_" + "A" * 43
    forged = {"name": "intruder", "role": "admin", "created": 1.0, "expires": None,
              "revoked": None}  # fmt: skip
    await redis_client.hset(keys.TOKENS, hash_token(forged_token), msgpack.packb(forged))
    with caplog.at_level("ERROR", logger="watchfloor.security.tokens"):
        assert await store.verify(forged_token) is None
    assert "not created by watchfloor" in caplog.text and "intruder" in caplog.text
    assert (await store.verify(real)).role == "duty_manager"
    reported = await redis_client.hgetall(FORGED_KEY)
    assert list(reported) == [hash_token(forged_token).encode()]
    states = {row["name"]: row["state"] for row in await store.list()}
    assert states == {"duty-lee": "active", "intruder": "forged"}
    assert [r["name"] for r in await store.forged_records()] == ["intruder"]


async def test_a_sealed_record_edited_in_redis_no_longer_verifies(redis_client, data_dir):
    store = TokenStore(redis_client, seal=load_seal(data_dir))
    token, _ = await store.create("viewer-1", "viewer")
    assert await store.revoke("viewer-1")
    digest = hash_token(token)
    record = msgpack.unpackb(await redis_client.hget(keys.TOKENS, digest))
    for edit in ({"revoked": None}, {"role": "admin"}, {"mac": "0" * 64}):
        await redis_client.hset(keys.TOKENS, digest, msgpack.packb({**record, **edit}))
        assert await store.verify(token) is None, edit
    other = TokenStore(redis_client, seal=load_seal(data_dir.parent / "elsewhere"))
    fresh, _ = await store.create("viewer-2", "viewer")
    assert await other.verify(fresh) is None  # another data dir's key does not fit


def test_the_seal_key_is_private_and_kept(data_dir):
    first = load_seal(data_dir)
    path = data_dir / "keys" / "tokens.key"
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_bytes()) == 32
    assert load_seal(data_dir).mac("d", {}) == first.mac("d", {})
    assert load_seal(data_dir.parent / "none", create=False).valid("d", {})  # not yet keyed
