"""The audit log's core: records, the chain in Redis, concurrent appenders, checkpoints, Merkle."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import stat
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.config import load_config
from watchfloor.security.audit import AuditLog, open_audit
from watchfloor.security.audit_chain import (
    GENESIS,
    Frontier,
    canonical,
    checkpoint_message,
    leaf_hash,
    merkle_root,
    record_hash,
    verify_records,
)
from watchfloor.security.signer import (
    PRIVATE_NAME,
    PUBLIC_NAME,
    SignerError,
    generate_signing_key,
    key_id,
    load_public_key,
    load_signer,
    verify_signature,
)

# RFC 6962 / Certificate Transparency reference leaves and tree heads.
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash, straight from the RFC's recursive definition."""
    import hashlib

    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


@pytest.mark.parametrize("size", range(9))
def test_merkle_root_matches_the_rfc_6962_reference_tree_heads(size: int) -> None:
    leaves = [leaf_hash(bytes.fromhex(x)).hex() for x in CT_LEAVES[:size]]
    assert merkle_root(leaves) == CT_ROOTS[size]


def test_frontier_restarted_mid_tree_gives_the_same_root_as_the_recursive_definition() -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(70)]
    for split in (0, 1, 5, 8, 33, 64, 69):
        head = Frontier()
        for leaf in leaves[:split]:
            head.append(leaf)
        resumed = Frontier(split, head.hashes)
        for leaf in leaves[split:]:
            resumed.append(leaf)
        assert resumed.root() == _mth(leaves).hex(), split


def test_record_hash_is_a_leaf_hash_over_sorted_compact_json_without_the_hash() -> None:
    record = {"seq": 1, "b": "é", "a": [1, 2], "hash": "ignored"}
    assert canonical({"b": "é", "a": [1, 2]}) == '{"a":[1,2],"b":"é"}'.encode()
    expected = leaf_hash(b'{"a":[1,2],"b":"\xc3\xa9","seq":1}').hex()
    assert record_hash(record) == expected


def test_signing_key_files_have_the_documented_names_modes_and_key_id(tmp_path: Path) -> None:
    private, public = generate_signing_key(tmp_path / "keys")
    assert (private.name, public.name) == (PRIVATE_NAME, PUBLIC_NAME)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = load_signer(tmp_path / "keys")
    assert re.fullmatch(r"[0-9a-f]{16}", signer.key_id)
    assert key_id(load_public_key(public)) == signer.key_id
    signature = signer.sign(b"hello")
    assert verify_signature(load_public_key(public), b"hello", signature)
    assert not verify_signature(load_public_key(public), b"hellO", signature)
    with pytest.raises(SignerError, match="already exists"):
        generate_signing_key(tmp_path / "keys")


def test_a_missing_signing_key_is_a_signer_error_naming_keys_init(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="keys init"):
        load_signer(tmp_path)


async def test_appended_records_chain_from_genesis_and_read_back_in_order(
    redis_client: aioredis.Redis,
) -> None:
    log = AuditLog(redis_client)
    first = await log.append("alice", "duty_manager", "incident.ack", "inc-1", details={"n": 1})
    second = await log.append("bob", "oncall", "run.step.done", "run-1", "ok")
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["prev"] == GENESIS and second["prev"] == first["hash"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["at"])
    assert await log.read() == [first, second]
    assert await log.read(after=1) == [second]
    assert await log.read(after=0, limit=1) == [first]
    assert await log.head() == (2, second["hash"])
    assert await redis_client.hgetall(keys.AUDIT_HEAD) == {
        b"seq": b"2",
        b"hash": second["hash"].encode(),
    }


async def test_details_are_masked_and_made_json_safe(redis_client: aioredis.Redis) -> None:
    log = AuditLog(redis_client)
    record = await log.append(
        "alice",
        "admin",
        "incident.opened",
        "agent-7",
        details={"text": "客户手机 13812345678", "count": 3, "nan": float("nan"), "ids": ("a",)},
    )
    assert "13812345678" not in canonical(record).decode()
    assert record["details"]["count"] == 3
    assert record["details"]["nan"] == "nan"
    assert record["details"]["ids"] == ["a"]


async def test_two_concurrent_writers_on_separate_connections_never_fork_the_chain(
    redis_url: str,
) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    logs = [AuditLog(c) for c in clients]

    async def write(log: AuditLog, name: str) -> list[int]:
        seqs = []
        for i in range(200):
            seqs.append((await log.append(name, "admin", "flag.set", str(i)))["seq"])
            await asyncio.sleep(0.0005)  # real writers pause between actions
        return seqs

    try:
        seqs = await asyncio.gather(write(logs[0], "w0"), write(logs[1], "w1"))
        records = await logs[0].read(limit=1000)
    finally:
        for client in clients:
            await client.aclose()
    assert sorted(seqs[0] + seqs[1]) == list(range(1, 401))
    assert [r["seq"] for r in records] == list(range(1, 401))
    actors = [r["actor"] for r in records]
    assert sum(a != b for a, b in itertools.pairwise(actors)) > 10  # they really interleaved
    assert logs[0].conflicts + logs[1].conflicts > 0  # and really raced for the head
    result = verify_records(records, [], [])
    assert result.ok and result.verified_upto == 400


async def test_checkpoint_signs_size_head_and_merkle_root_and_verifies(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    generate_signing_key(tmp_path)
    signer = load_signer(tmp_path)
    log = AuditLog(redis_client, signer)
    assert await log.checkpoint() is None  # nothing to sign yet
    for i in range(7):
        await log.append("a", "admin", "flag.set", str(i))
    first = await log.checkpoint()
    assert first is not None and await log.checkpoint() is None
    for i in range(5):
        await log.append("a", "admin", "flag.set", str(i))
    second = await log.checkpoint()
    records = await log.read()
    assert second is not None
    assert second["size"] == 12 and second["head_hash"] == records[-1]["hash"]
    assert second["root"] == merkle_root(r["hash"] for r in records)
    assert second["key_id"] == signer.key_id
    assert verify_signature(signer.public_key, checkpoint_message(second), second["signature"])
    assert await log.checkpoints() == [first, second]
    result = verify_records(records, [first, second], [signer.public_key])
    assert (result.ok, result.verified_upto, result.last_checkpoint_seq) == (True, 12, 12)
    assert result.checkpoints == 2


async def test_a_fresh_process_rebuilds_the_frontier_and_keeps_checkpointing(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    generate_signing_key(tmp_path)
    signer = load_signer(tmp_path)
    first = AuditLog(redis_client, signer)
    for i in range(5):
        await first.append("a", "admin", "flag.set", str(i))
    await first.checkpoint()
    second = AuditLog(redis_client, signer)  # no cached frontier: read it from Redis
    await second.append("b", "admin", "flag.set", "x")
    checkpoint = await second.checkpoint()
    assert checkpoint is not None
    assert checkpoint["root"] == merkle_root(r["hash"] for r in await second.read())


async def test_checkpoint_refuses_to_sign_a_chain_altered_in_redis(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    from watchfloor.security.audit import AuditIntegrityError

    generate_signing_key(tmp_path)
    log = AuditLog(redis_client, load_signer(tmp_path))
    for i in range(3):
        await log.append("a", "admin", "flag.set", str(i))
    records = await log.read()
    records[1]["actor"] = "mallory"
    await redis_client.delete(keys.AUDIT)  # a stream entry cannot be edited: rebuild the stream
    for record in records:
        await redis_client.xadd(keys.AUDIT, {"r": canonical(record)}, id=f"{record['seq']}-0")
    with pytest.raises(AuditIntegrityError, match="record 2"):
        await log.checkpoint()


async def test_open_audit_uses_the_data_dir_keys_and_config(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    config = load_config(
        f'data_dir = "{tmp_path}"\n[security]\ncheckpoint_every = 5\ncheckpoint_interval_s = 2.5\n'
    )
    without = open_audit(config, redis_client)
    assert without.signer is None
    log = open_audit(config, redis_client, create_keys=True)
    assert log.signer is not None and (tmp_path / "keys" / PRIVATE_NAME).exists()
    assert (log.checkpoint_every, log.checkpoint_interval_s) == (5, 2.5)
    assert log.files_dir == tmp_path / "audit"


WRITER = """
import asyncio, sys
import redis.asyncio as aioredis
from watchfloor.security.audit import AuditLog

async def main(url, name):
    client = aioredis.Redis.from_url(url)
    log = AuditLog(client)
    await client.incr("test:ready")
    await client.blpop(["test:go"], 30)  # start together
    for i in range(200):
        await log.append(name, "admin", "flag.set", str(i))
        await asyncio.sleep(0.001)  # like real writers, not a tight loop: both get turns
    await client.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_writer_processes_appending_at_once_leave_one_unbroken_chain(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    import sys

    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, redis_url, name)
        for name in ("collector", "monitor")
    ]
    for _ in range(300):
        if await redis_client.get("test:ready") == b"2":
            break
        await asyncio.sleep(0.05)
    await redis_client.rpush("test:go", 1, 1)
    codes = [await asyncio.wait_for(p.wait(), 60) for p in procs]
    assert codes == [0, 0]
    records = await AuditLog(redis_client).read(limit=1000)
    assert [r["seq"] for r in records] == list(range(1, 401))
    actors = [r["actor"] for r in records]
    assert actors.count("collector") == 200
    assert sum(a != b for a, b in itertools.pairwise(actors)) > 10  # they really interleaved
    assert verify_records(records, [], []).ok
