"""The Redis Cluster client on a real local cluster: URLs, flag, transactions, slots, faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ClusterCrossSlotError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
)

from tests.cluster import LocalCluster
from watchfloor.core import keys
from watchfloor.core.bus import BusUnavailable, EventProducer
from watchfloor.core.events import Heartbeat
from watchfloor.core.redis_client import (
    ClusterDown,
    ClusterLoginRefused,
    ClusterUnreachable,
    RedisUrlError,
    connect,
    connect_for,
    connect_sync,
    is_cluster,
)
from watchfloor.core.redis_server import free_port
from watchfloor.core.redis_tx import TransactionMisuse, transact

SECRET = "cluster-test-secret"


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> LocalCluster:
    redis_cluster.flushall()
    return redis_cluster


@pytest.fixture(scope="module")
def guarded_cluster() -> Iterator[LocalCluster]:
    """A cluster with a password (requirepass + masterauth)."""
    with LocalCluster(masters=3, password=SECRET) as local:
        yield local


def shard_on(cluster: LocalCluster, master: int) -> int:
    """An events shard number whose keys live on ``master``'s slots."""
    slots = cluster.slot_range(master)
    return next(n for n in range(1000) if key_slot(keys.events_shard(n).encode()) in slots)


def node_keys(cluster: LocalCluster) -> list[int]:
    """How many keys each master holds."""
    counts = []
    for shard in range(cluster.masters):
        with contextlib.closing(cluster.client(cluster.master(shard))) as client:
            counts.append(int(client.dbsize()))
    return counts


async def write_one_key_per_master(client: aioredis.Redis, cluster: LocalCluster) -> None:
    for master in range(cluster.masters):
        await client.set(keys.engine_checkpoint(shard_on(cluster, master)), b"x")


# -- choosing and opening a cluster client ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "flag", "expected"),
    [
        ("redis+cluster://h:1,h:2", False, True),
        ("REDISS+CLUSTER://h:1", False, True),
        ("redis://h:1/0", True, True),
        ("redis://h:1/0", False, False),
        ("unix:///run/redis.sock?db=0", False, False),
    ],
)
def test_is_cluster_follows_the_url_scheme_or_the_flag(
    url: str, flag: bool, expected: bool
) -> None:
    assert is_cluster(url, flag) is expected


async def test_a_cluster_url_routes_each_key_to_the_master_of_its_slot(
    cluster: LocalCluster,
) -> None:
    client = connect(f"{cluster.url}?socket_timeout=4.5")  # redis-py's URL options apply
    try:
        await write_one_key_per_master(client, cluster)
        assert node_keys(cluster) == [1, 1, 1]
        assert len(client.get_primaries()) == 3  # type: ignore[attr-defined]
        assert client.get_connection_kwargs()["socket_timeout"] == 4.5
    finally:
        await client.aclose()


async def test_the_cluster_flag_turns_one_node_url_into_a_cluster_client(
    cluster: LocalCluster,
) -> None:
    one_node = f"redis://127.0.0.1:{cluster.master(0).port}/0"
    plain = connect(one_node)
    elsewhere = keys.engine_checkpoint(shard_on(cluster, 1))
    with pytest.raises(MovedError):
        await plain.set(elsewhere, b"x")  # without the flag: one node, redirections refused
    await plain.aclose()

    for client in (
        connect(one_node, cluster=True),
        connect_for(SimpleNamespace(redis=SimpleNamespace(cluster=True)), one_node),
    ):
        try:
            await write_one_key_per_master(client, cluster)
        finally:
            await client.aclose()
    assert node_keys(cluster) == [1, 1, 1]


def test_the_blocking_client_opens_a_cluster_too(cluster: LocalCluster) -> None:
    client = connect_sync(cluster.url)
    try:
        for master in range(cluster.masters):
            client.set(keys.engine_status(shard_on(cluster, master)), b"1")
    finally:
        client.close()
    assert node_keys(cluster) == [1, 1, 1]


async def test_a_password_file_in_a_cluster_url_logs_in_on_every_node(
    guarded_cluster: LocalCluster,
) -> None:
    assert "password_file=" in guarded_cluster.url
    client = connect(guarded_cluster.url)
    try:
        await write_one_key_per_master(client, guarded_cluster)
    finally:
        await client.aclose()
    sync_client = connect_sync(guarded_cluster.url)
    try:
        assert sync_client.get(keys.engine_checkpoint(shard_on(guarded_cluster, 2))) == b"x"
    finally:
        sync_client.close()
    without = connect(guarded_cluster.url.partition("?")[0])
    with pytest.raises(ClusterLoginRefused, match="refused the login") as caught:
        await without.get("k")
    await without.aclose()
    assert isinstance(caught.value, redis.AuthenticationError)
    wrong = guarded_cluster.url.replace("://", "://:not-it@").partition("?")[0]
    with pytest.raises(ClusterLoginRefused, match=guarded_cluster.master(0).address):
        connect_sync(wrong)


# -- misconfiguration and unreachable nodes ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "flag", "names"),
    [
        ("redis+cluster://", False, "names no cluster node"),
        ("redis+cluster://,", False, "names no cluster node"),
        ("redis+cluster://127.0.0.1:7000,,127.0.0.1:7001", False, "empty entry"),
        ("redis+cluster://127.0.0.1:70000", False, "bad port '70000'"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:x1", False, "bad port 'x1'"),
        ("redis+cluster://:7000", False, "node ':7000' has no host"),
        ("redis+cluster://127.0.0.1:7000/2", False, "path selects db '2'"),
        ("redis+cluster://127.0.0.1:7000?db=3", False, "db parameter selects db 3"),
        ("redis://127.0.0.1:7000/1", True, "only db 0"),
        ("unix:///tmp/redis.sock?db=0", True, "not a Unix socket"),
        ("http://127.0.0.1:7000", True, "unknown scheme 'http'"),
        ("redis+cluster://127.0.0.1:7000?colour=blue", False, "'colour' is not an option"),
        ("redis+cluster://127.0.0.1:7000?socket_timeout=soon", False, "'socket_timeout'"),
    ],
)
def test_a_misconfigured_cluster_url_is_refused_naming_the_wrong_part(
    url: str, flag: bool, names: str
) -> None:
    for open_client in (connect, connect_sync):
        with pytest.raises(RedisUrlError, match=names.replace("(", r"\(")):
            open_client(url, cluster=flag)


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(RedisUrlError) as caught:
        connect("redis+cluster://admin:hunter2@127.0.0.1:99999")
    assert "hunter2" not in str(caught.value) and "admin:***@" in str(caught.value)


async def test_a_dead_startup_node_is_skipped_when_another_answers(cluster: LocalCluster) -> None:
    dead = f"127.0.0.1:{free_port()}"
    client = connect(f"redis+cluster://{dead},{cluster.master(1).address}")
    try:
        await write_one_key_per_master(client, cluster)
    finally:
        await client.aclose()
    assert node_keys(cluster) == [1, 1, 1]


async def test_no_node_answering_is_a_clear_connection_error_naming_every_node() -> None:
    nodes = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    client = connect("redis+cluster://" + ",".join(nodes), socket_connect_timeout=1)
    with pytest.raises(ClusterUnreachable) as caught:
        await client.get("k")  # the client connects at its first command
    await client.aclose()
    assert isinstance(caught.value, redis.ConnectionError)  # outage handling applies
    assert all(node in str(caught.value) for node in nodes)
    with pytest.raises(ClusterUnreachable, match=nodes[1]):
        connect_sync("redis+cluster://" + ",".join(nodes), socket_connect_timeout=1)


async def test_a_cluster_gone_mid_run_fails_like_a_lost_redis_and_is_used_again_after() -> None:
    with LocalCluster(masters=3) as local:
        # a refresh at every retry, one retry: the outage is told at once, not after backoff
        client = connect(local.url, retry=Retry(NoBackoff(), 1), topology_refresh_min_interval=0)
        stream = keys.events_shard(shard_on(local, 1))
        producer = EventProducer(client, stream=stream, retry_for_s=0.2)
        try:
            await write_one_key_per_master(client, local)
            for shard in range(local.masters):
                local.kill_master(shard)

            with pytest.raises(ClusterUnreachable) as caught:
                await client.get(stream)
            assert isinstance(caught.value, redis.ConnectionError)
            assert all(node.address in str(caught.value) for node in local.nodes)
            with pytest.raises(ClusterUnreachable):
                async with client.pipeline(transaction=False) as pipe:
                    await pipe.get(stream).get(keys.INCIDENTS_OPEN).execute()
            with pytest.raises(ClusterUnreachable):
                await transact(client, [stream], read(stream))
            with pytest.raises(BusUnavailable):  # so the collector spools, as on one Redis
                await producer.publish_events([Heartbeat(ts=1_763_800_000.0, source="s")])

            for index in range(len(local.nodes)):
                local.restart_node(index, wait=False)
            local.wait_converged()
            await producer.publish_events([Heartbeat(ts=1_763_800_001.0, source="s")])
            assert await client.xlen(stream) == 1
        finally:
            await client.aclose()


async def test_a_dead_master_not_replaced_is_an_outage_until_it_is_back() -> None:
    with LocalCluster(masters=3, node_timeout_ms=500) as local:
        client = connect(local.url, retry=Retry(NoBackoff(), 1), topology_refresh_min_interval=0)
        elsewhere = keys.events_shard(shard_on(local, 1))  # served by a live master
        try:
            await write_one_key_per_master(client, local)
            local.kill_master(0)
            # once the others flag it failed, the whole cluster refuses (full coverage)
            deadline = time.monotonic() + 10
            with pytest.raises(ClusterDown) as caught:
                while time.monotonic() < deadline:
                    await client.xadd(elsewhere, {b"b": b"x"})
                    await asyncio.sleep(0.05)
            assert isinstance(caught.value, redis.ConnectionError)  # retried, spooled
            assert isinstance(caught.value, ClusterDownError)  # and still redis-py's

            local.restart_node(0)
            await client.xadd(elsewhere, {b"b": b"back"})
            assert (await client.xrevrange(elsewhere, count=1))[0][1] == {b"b": b"back"}
        finally:
            await client.aclose()


# -- transactions and scripts stay in one slot ---------------------------------------------


async def test_transact_on_the_cluster_retries_a_real_watch_conflict(
    cluster: LocalCluster,
) -> None:
    shard = shard_on(cluster, 2)
    key, other = keys.engine_checkpoint(shard), keys.engine_status(shard)
    client, rival = connect(cluster.url), connect(cluster.url)
    attempts = 0

    async def bump(pipe: Any) -> int:
        nonlocal attempts
        attempts += 1
        value = int(await pipe.get(key) or 0)
        if attempts == 1:
            await rival.set(key, 10)  # another writer commits between WATCH and EXEC
        pipe.multi()
        pipe.set(key, value + 1)
        pipe.set(other, value + 1)
        return value + 1

    try:
        assert await transact(client, [key], bump) == 11
        assert attempts == 2
        assert await client.get(key) == b"11" and await client.get(other) == b"11"
        results = await asyncio.gather(*(transact(client, [key], incr(key)) for _ in range(20)))
        assert await client.get(key) == b"31" and sorted(results) == list(range(12, 32))
        assert await transact(client, [key], read(key)) == b"31"  # no multi(): nothing written
        await client.set(key, b"0")  # and no watch left behind
    finally:
        await client.aclose()
        await rival.aclose()


async def test_transact_refuses_what_the_cluster_pipeline_would_drop_before_multi(
    any_redis: aioredis.Redis, any_redis_url: str
) -> None:
    key = keys.incident("I-7")
    await any_redis.set(key, b"open")

    async def close_if_there(pipe: Any) -> bool:
        there = bool(await pipe.exists(key))
        pipe.multi()
        pipe.delete(key)  # after multi(): queued on both
        return there

    if is_cluster(any_redis_url):
        # redis-py would return the pipeline itself (truthy) and never send EXISTS
        with pytest.raises(TransactionMisuse, match="exists"):
            await transact(any_redis, [key], close_if_there)
        assert await any_redis.get(key) == b"open"
    else:
        assert await transact(any_redis, [key], close_if_there) is True
        assert await any_redis.get(key) is None

    async def delete_after_multi(pipe: Any) -> None:
        assert await pipe.get(key) in (b"open", None)
        pipe.multi()
        pipe.delete(key)

    await any_redis.set(key, b"open")
    await transact(any_redis, [key], delete_after_multi)
    assert await any_redis.get(key) is None


def incr(key: str) -> Any:
    async def step(pipe: Any) -> int:
        value = int(await pipe.get(key) or 0)
        await asyncio.sleep(0)  # let the others read the same value
        pipe.multi()
        pipe.set(key, value + 1)
        return value + 1

    return step


def read(key: str) -> Any:
    async def look(pipe: Any) -> Any:
        return await pipe.get(key)

    return look


async def test_a_shards_keys_share_a_slot_so_multi_and_lua_work(cluster: LocalCluster) -> None:
    shard = shard_on(cluster, 1)
    stream, checkpoint, lease = (
        keys.events_shard(shard),
        keys.engine_checkpoint(shard),
        keys.shard_lease(shard),
    )
    assert len({key_slot(k.encode()) for k in (stream, checkpoint, lease)}) == 1
    control = [keys.INCIDENTS_OPEN, keys.SEQ_INCIDENT, keys.incident("I-1"), keys.AUDIT]
    assert len({key_slot(k.encode()) for k in control}) == 1
    client = connect(cluster.url)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(stream, {b"b": b"batch"})
            pipe.set(checkpoint, b"state")
            await pipe.execute()
        script = client.register_script(
            "redis.call('SET', KEYS[2], ARGV[1]) return redis.call('XLEN', KEYS[1])"
        )
        assert await script(keys=[stream, lease], args=["worker-1"]) == 1
        assert await client.get(lease) == b"worker-1"
    finally:
        await client.aclose()


async def test_keys_of_two_tags_in_one_transaction_or_script_are_refused(
    cluster: LocalCluster,
) -> None:
    a, b = keys.events_shard(shard_on(cluster, 0)), keys.events_shard(shard_on(cluster, 1))
    client = connect(cluster.url)
    try:
        with pytest.raises(RedisClusterException, match="same key slot"):
            await transact(client, [a, b], read(a))
        script = "redis.call('SET', KEYS[1], 1) redis.call('SET', KEYS[2], 1) return 1"
        with pytest.raises(RedisClusterException, match="same key slot"):
            await client.eval(script, 2, a, b)  # type: ignore[misc]
    finally:
        await client.aclose()
    # and redis itself refuses it: the hash tags are what keeps a commit on one node
    with contextlib.closing(cluster.client(cluster.master(0))) as node:
        with pytest.raises(ClusterCrossSlotError):  # the server's -CROSSSLOT reply
            node.eval(script, 2, a, b)
        assert node.dbsize() == 0


# -- failover ---------------------------------------------------------------------------------


@pytest.fixture
def replicated_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(masters=3, replicas=1) as local:
        yield local


async def test_a_write_synced_to_the_replica_survives_its_masters_death(
    replicated_cluster: LocalCluster,
) -> None:
    local = replicated_cluster
    stream = keys.events_shard(shard_on(local, 0))
    client = connect(local.url)
    try:
        await write_one_key_per_master(client, local)  # the client knows the slot map
        with contextlib.closing(local.client(local.master(0))) as master:
            entry = master.xadd(stream, {b"b": b"acknowledged"})
            assert master.execute_command("WAIT", 1, 5000) == 1  # the replica has it

        dead = local.kill_master(0)
        promoted = local.promote_replica_of(0)
        assert promoted.port != dead.port

        # the first use after the takeover is a watched transaction on the stale slot map:
        # the lost connection is retried as a conflict, on the new master
        async def append(pipe: Any) -> list[Any]:
            seen = [e[0] for e in await pipe.xrange(stream)]
            pipe.multi()
            pipe.xadd(stream, {b"b": b"after"})
            return seen

        assert await transact(client, [stream], append) == [entry]
        await write_one_key_per_master(client, local)
        with contextlib.closing(local.client(promoted)) as new_master:
            assert new_master.xlen(stream) == 2
    finally:
        await client.aclose()

    local.restart_node(local.nodes.index(dead))  # the old master rejoins as a replica
    with contextlib.closing(local.client(dead)) as rejoined:
        assert rejoined.info("replication")["role"] == "slave"


def test_the_cluster_setting_with_a_plain_url_reaches_every_command(
    redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    """``[redis] cluster = true`` with a ``redis://`` URL of one master: a command that
    builds its own client (``audit tail``) talks to the cluster, not to that one node (it
    answered MOVED for the control plane's slot, with a traceback)."""
    import os
    import subprocess
    import sys

    from redis.cluster import key_slot

    slot = key_slot(b"{wf}")
    other = next(i for i in range(3) if slot not in redis_cluster.slot_range(i))
    (tmp_path / "watchfloor.toml").write_text(
        f'[redis]\nurl = "redis://{redis_cluster.master(other).address}"\ncluster = true\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "watchfloor", "audit", "tail", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-1500:]
