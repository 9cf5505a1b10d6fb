"""The file mirror, restoring a wiped Redis, the monitor's audit task, tail and export bundles."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from watchfloor.cli import main
from watchfloor.core import keys
from watchfloor.core.redis_server import EmbeddedRedis
from watchfloor.security.audit import AuditIntegrityError, AuditLog
from watchfloor.security.audit_chain import VerifyResult, make_bundle, verify_bundle, verify_records
from watchfloor.security.audit_files import (
    AuditFiles,
    read_checkpoints,
    read_records,
    segment_paths,
)
from watchfloor.security.signer import generate_signing_key, load_public_key, load_signer


def make_log(client: aioredis.Redis, data_dir: Path, **options: object) -> AuditLog:
    keys_dir = data_dir / "keys"
    if not (keys_dir / "audit-signing.pem").exists():
        generate_signing_key(keys_dir)
    return AuditLog(
        client,
        load_signer(keys_dir),
        files_dir=data_dir / "audit",
        **options,  # type: ignore[arg-type]
    )


async def fill(log: AuditLog, count: int, *, every: int = 0) -> None:
    for i in range(count):
        await log.append("alice", "admin", "flag.set", f"flag-{i}")
        if every and (i + 1) % every == 0:
            await log.checkpoint()


def verify_dir(data_dir: Path) -> VerifyResult:
    public = load_public_key(data_dir / "keys" / "audit-signing.pub.pem")
    audit = data_dir / "audit"
    return verify_records(read_records(audit), read_checkpoints(audit), [public])


async def test_mirror_writes_fsynced_0600_segments_rolling_at_n_records(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir, segment_records=10)
    await fill(log, 25, every=10)
    assert await log.mirror() == 25
    assert await log.mirror() == 0  # nothing new: nothing written twice
    await fill(log, 3)
    assert await log.mirror() == 3
    log.close()
    audit = data_dir / "audit"
    names = [p.name for p in segment_paths(audit)]
    assert names == ["audit-000001.jsonl", "audit-000002.jsonl", "audit-000003.jsonl"]
    assert [len(p.read_text().splitlines()) for p in segment_paths(audit)] == [10, 10, 8]
    assert stat.S_IMODE(os.stat(audit / names[0]).st_mode) == 0o600
    assert [c["size"] for c in read_checkpoints(audit)] == [10, 20]
    assert [r["seq"] for r in read_records(audit)] == list(range(1, 29))


async def test_a_second_writer_stands_aside_while_the_first_holds_the_files(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    first, second = make_log(redis_client, data_dir), make_log(redis_client, data_dir)
    await fill(first, 3)
    assert await first.mirror() == 3
    assert await second.mirror() == 0
    assert second.files_dir is None  # it stopped trying
    first.close()


def test_a_torn_last_line_is_cut_when_the_files_are_opened(data_dir: Path) -> None:
    audit = data_dir / "audit"
    audit.mkdir()
    good = b'{"seq":1,"hash":"aa"}\n'
    (audit / "audit-000001.jsonl").write_bytes(good + b'{"seq":2,"ha')
    files = AuditFiles(audit)
    assert files.open()
    assert (files.last_seq, files.last_hash) == (1, "aa")
    assert (audit / "audit-000001.jsonl").read_bytes() == good
    files.close()


async def test_a_wiped_redis_keeps_its_history_and_the_chain_continues(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir, segment_records=7)
    await fill(log, 20, every=10)
    await log.mirror()
    log.close()
    before = await log.read(limit=100)
    await redis_client.flushall()

    other = make_log(redis_client, data_dir)  # another process: the collector, say
    record = await other.append("bob", "oncall", "run.step.done", "run-1")
    assert record["seq"] == 21 and record["prev"] == before[-1]["hash"]
    assert (await other.read(limit=100))[:20] == before
    assert [c["size"] for c in await other.checkpoints()] == [10, 20]
    assert await other.checkpoint() is not None
    assert await other.mirror() == 1
    other.close()
    result = verify_dir(data_dir)
    assert (result.ok, result.records, result.last_checkpoint_seq) == (True, 21, 21)


async def test_redis_that_lost_its_last_records_gets_them_back_from_the_files(
    private_redis: EmbeddedRedis, data_dir: Path
) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    try:
        log = make_log(client, data_dir)
        await fill(log, 12, every=5)
        await log.mirror()
        log.close()
        # Redis restarted from an older snapshot: records 9..12 and the head moved back.
        await client.xtrim(keys.AUDIT, minid="0", approximate=False)
        records = await log.read(limit=100)
        await client.delete(keys.AUDIT, keys.AUDIT_HEAD)
        for record in records[:8]:
            await client.xadd(keys.AUDIT, {"r": json.dumps(record)}, id=f"{record['seq']}-0")
        await client.hset(keys.AUDIT_HEAD, mapping={"seq": 8, "hash": records[7]["hash"]})
        fresh = make_log(client, data_dir)
        assert await fresh.restore() == 4
        assert await fresh.read(limit=100) == records
        assert (await fresh.append("a", "admin", "flag.set", "x"))["seq"] == 13
    finally:
        await client.aclose()


async def test_files_that_disagree_with_redis_are_not_restored_over_it(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 5)
    await log.mirror()
    log.close()
    await redis_client.flushall()
    await AuditLog(redis_client).append("x", "admin", "flag.set", "fork")  # a process without files
    await fill(AuditLog(redis_client), 2)
    with pytest.raises(AuditIntegrityError, match="disagree at record 3"):
        await make_log(redis_client, data_dir).restore()
    assert await redis_client.keys(f"{keys.AUDIT}:restore:*") == []  # no staging left behind


async def test_tampered_files_are_not_restored_into_a_wiped_redis(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 6, every=3)
    await log.mirror()
    log.close()
    await redis_client.flushall()
    segment = data_dir / "audit" / "audit-000001.jsonl"
    segment.write_text(segment.read_text().replace("flag-4", "flag-X"))
    with pytest.raises(AuditIntegrityError, match="fail verification at record 5"):
        await make_log(redis_client, data_dir).restore()
    assert await redis_client.exists(keys.AUDIT, keys.AUDIT_HEAD) == 0


async def test_the_audit_task_checkpoints_every_n_records_even_after_a_burst_and_on_stop(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir, checkpoint_every=10, tick_s=0.02)
    await fill(log, 25)  # a burst before the task's first pass
    stop = asyncio.Event()
    task = asyncio.create_task(log.run(stop))
    for _ in range(200):
        if len(await log.checkpoints()) == 3:
            break
        await asyncio.sleep(0.02)
    await fill(log, 3)  # below the threshold and long before the interval: signed on stop
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 5)
    # 10 and 20 by count; 25 because the first pass signs what waited for a monitor
    assert [c["size"] for c in read_checkpoints(data_dir / "audit")] == [10, 20, 25, 28]
    result = verify_dir(data_dir)
    assert (result.ok, result.records, result.last_checkpoint_seq) == (True, 28, 28)


async def test_the_audit_task_signs_after_the_interval_when_records_are_few(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir, checkpoint_interval_s=0.1, tick_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(log.run(stop))
    await fill(log, 3)
    for _ in range(100):
        if await log.checkpoints():
            break
        await asyncio.sleep(0.02)
    checkpoints = await log.checkpoints()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [c["size"] for c in checkpoints] == [3]


@pytest.mark.parametrize(
    ("since", "until", "tail"),
    [(1, 30, 0), (1, 7, 3), (11, 17, 3), (13, 20, 0), (21, 25, 5), (30, 30, 0)],
)
async def test_exported_ranges_verify_offline_with_only_the_public_key(
    redis_client: aioredis.Redis, data_dir: Path, since: int, until: int, tail: int
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 30, every=10)
    records, checkpoints = await log.read(limit=100), await log.checkpoints()
    bundle = json.loads(json.dumps(make_bundle(records, checkpoints, since, until)))
    assert [r["seq"] for r in bundle["records"]] == list(range(since, until + 1))
    assert len(bundle["tail"]) == tail
    public = load_public_key(data_dir / "keys" / "audit-signing.pub.pem")
    result = verify_bundle(bundle, [public])
    assert result.ok, result.reason
    assert result.last_checkpoint_seq >= until
    bundle["records"][0]["target"] = "changed"
    bad = verify_bundle(bundle, [public])
    assert (bad.ok, bad.first_bad_seq) == (False, since)


async def test_a_bundle_with_a_forged_anchor_or_tail_fails_at_its_checkpoint(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 20, every=10)
    bundle = make_bundle(await log.read(limit=100), await log.checkpoints(), 12, 15)
    public = load_public_key(data_dir / "keys" / "audit-signing.pub.pem")
    forged = json.loads(json.dumps(bundle))
    forged["anchor"]["frontier"][0] = "00" * 32
    result = verify_bundle(forged, [public])
    assert (result.ok, result.first_bad_seq) == (False, 20)
    assert "Merkle root" in result.reason
    at_checkpoint = make_bundle(await log.read(limit=100), await log.checkpoints(), 11, 15)
    at_checkpoint["anchor"]["frontier"][0] = "00" * 32  # the checkpoint at seq 10 catches it
    result = verify_bundle(at_checkpoint, [public])
    assert (result.ok, result.first_bad_seq) == (False, 10)
    dropped = json.loads(json.dumps(bundle))
    dropped["tail"] = dropped["tail"][:-1]
    result = verify_bundle(dropped, [public])
    assert not result.ok and "truncated" in result.reason


async def test_cli_export_writes_a_bundle_that_cli_verify_accepts(
    redis_client: aioredis.Redis, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 30, every=10)
    await log.mirror()
    log.close()
    out = data_dir / "bundle.json"
    args = ["--data-dir", str(data_dir)]
    code = await asyncio.to_thread(
        main, ["audit", "export", *args, "--since", "5", "--until", "14", "--out", str(out)]
    )
    assert code == 0
    assert "exported records 5..14 (10)" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    pubkey = str(data_dir / "keys" / "audit-signing.pub.pem")
    code = main(["audit", "verify", "--file", str(out), "--pubkey", pubkey])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("trust: the --pubkey key(s)")
    assert out.splitlines()[1].startswith("verified 10 records, 2 checkpoints")


async def test_cli_tail_shows_the_last_records_from_the_files(
    redis_client: aioredis.Redis, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 5)
    await log.mirror()
    log.close()
    code = main(["audit", "tail", "--data-dir", str(data_dir), "-n", "2", "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [json.loads(line)["seq"] for line in lines] == [4, 5]


async def test_cli_verify_and_tail_read_redis_when_asked(
    redis_client: aioredis.Redis,
    redis_url: str,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 12, every=5)
    args = ["--data-dir", str(data_dir), "--redis", redis_url]
    code = await asyncio.to_thread(main, ["audit", "verify", *args])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "verified 12 records, 2 checkpoints, last checkpoint at seq 10",
        "note: records 11..12 are chained but not yet covered by a signed checkpoint",
    ]
    code = await asyncio.to_thread(main, ["audit", "tail", *args, "-n", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split()[0] for line in lines] == ["10", "11", "12"]
    assert "alice (admin)  flag.set  flag-11  ok" in lines[-1]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("3", "5", "exported records 3..5 (3)"),
        ("2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "exported records 1..10 (10)"),
    ],
)
async def test_cli_export_takes_seqs_or_utc_times(
    redis_client: aioredis.Redis,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    since: str,
    until: str,
    expected: str,
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 10, every=10)
    await log.mirror()
    log.close()
    out = str(data_dir / "b.json")
    argv = ["audit", "export", "--data-dir", str(data_dir), "--since", since, "--until", until]
    assert await asyncio.to_thread(main, [*argv, "--out", out]) == 0
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize(
    ("tamper", "until", "message"),
    [
        (True, "5", "refusing to export: the log fails verification at record 3"),
        (False, "12", "no signed checkpoint covers seq 12 yet"),
    ],
)
async def test_cli_export_refuses_a_tampered_log_or_an_unsigned_range(
    redis_client: aioredis.Redis,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: bool,
    until: str,
    message: str,
) -> None:
    log = make_log(redis_client, data_dir)
    await fill(log, 10, every=10)
    await fill(log, 2)
    await log.mirror()
    log.close()
    if tamper:
        segment = data_dir / "audit" / "audit-000001.jsonl"
        segment.write_text(segment.read_text().replace("flag-2", "flag-X"))
    argv = ["audit", "export", "--data-dir", str(data_dir), "--since", "1", "--until", until]
    code = await asyncio.to_thread(main, [*argv, "--out", str(data_dir / "b.json")])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (data_dir / "b.json").exists()


async def test_after_a_signing_key_change_old_checkpoints_still_verify_and_restore(
    redis_client: aioredis.Redis, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from watchfloor.core.config import load_config
    from watchfloor.security.audit import open_audit

    config = load_config(f'data_dir = "{data_dir}"\n')
    old = open_audit(config, redis_client, create_keys=True)
    await fill(old, 4)
    await old.checkpoint()
    await old.mirror()
    old.close()
    keys_dir = data_dir / "keys"
    (keys_dir / "audit-signing.pub.pem").rename(keys_dir / "audit-signing-2026-11.pub.pem")
    generate_signing_key(keys_dir, overwrite=True)  # the retired public key stays pinned
    await redis_client.flushall()

    new = open_audit(config, redis_client)
    assert (await new.append("bob", "admin", "keys.rotate", "audit"))["seq"] == 5
    await new.checkpoint()
    await new.mirror()
    new.close()
    key_ids = {c["key_id"] for c in read_checkpoints(data_dir / "audit")}
    assert len(key_ids) == 2
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
    assert "verified 5 records, 2 checkpoints" in capsys.readouterr().out


async def _trimmed_log(client: aioredis.Redis, data_dir: Path) -> AuditLog:
    log = make_log(client, data_dir, redis_keep=5)
    await fill(log, 23, every=10)
    await log.mirror()
    assert await log.trim() == 11  # the last checkpoint mirrored and >= 5 records back
    return log


async def test_trimmed_redis_keeps_recent_records_and_still_verifies_from_its_anchor(
    redis_client: aioredis.Redis,
    redis_url: str,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = await _trimmed_log(redis_client, data_dir)
    assert [r["seq"] for r in await log.read(limit=100)] == list(range(11, 24))
    result = await log.verify()
    assert (result.ok, result.from_seq, result.verified_upto) == (True, 11, 23)
    assert result.last_checkpoint_seq == 20
    assert (await log.append("a", "admin", "flag.set", "x"))["seq"] == 24
    assert await log.mirror() == 1
    log.close()
    assert verify_dir(data_dir).records == 24  # the files keep everything
    args = ["audit", "verify", "--data-dir", str(data_dir), "--redis", redis_url]
    assert await asyncio.to_thread(main, args) == 0
    assert "note: verified from seq 11" in capsys.readouterr().out


async def test_tampering_with_a_trimmed_redis_or_its_anchor_is_detected(
    redis_client: aioredis.Redis, data_dir: Path
) -> None:
    log = await _trimmed_log(redis_client, data_dir)
    log.close()
    entries = await redis_client.xrange(keys.AUDIT_CHECKPOINTS, min="10-0", max="10-0")
    fields = entries[0][1]
    frontier = json.loads(fields[b"f"])
    frontier[0] = "00" * 32
    await redis_client.xdel(keys.AUDIT_CHECKPOINTS, "10-0")
    stream = await redis_client.xrange(keys.AUDIT_CHECKPOINTS)
    await redis_client.delete(keys.AUDIT_CHECKPOINTS)  # rebuilt: ids must stay in order
    rebuilt = [(b"10-0", {b"c": fields[b"c"], b"f": json.dumps(frontier).encode()}), *stream]
    for entry_id, entry in rebuilt:
        await redis_client.xadd(keys.AUDIT_CHECKPOINTS, entry, id=entry_id)
    result = await log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 10)
    assert (
        "checkpoint at seq 10: records up to seq 10 differ from it (Merkle root)" in result.reason
    )
