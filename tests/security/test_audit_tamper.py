"""Tampering with the mirrored files and with Redis is detected, and the first bad record named.

Every case builds a real log (Redis, signed checkpoints at 10, 20 and 30, files
mirrored in segments of 8 records), alters it the way an intruder would, then
runs ``watchfloor audit verify`` and the pure verifier on the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from watchfloor.cli import main
from watchfloor.core import keys
from watchfloor.security.audit import AuditLog
from watchfloor.security.audit_chain import canonical, checkpoint_message, record_hash
from watchfloor.security.audit_files import read_checkpoints, read_records, segment_paths
from watchfloor.security.signer import AuditSigner, generate_signing_key, load_signer

Records = list[dict[str, Any]]


@pytest.fixture
async def log_dir(redis_client: aioredis.Redis, data_dir: Path) -> Path:
    generate_signing_key(data_dir / "keys")
    log = AuditLog(
        redis_client,
        load_signer(data_dir / "keys"),
        files_dir=data_dir / "audit",
        segment_records=8,
    )
    for i in range(30):
        await log.append(f"user{i % 3}", "duty_manager", "incident.ack", f"inc-{i}", "ok", {"i": i})
        if (i + 1) % 10 == 0:
            await log.checkpoint()
    await log.mirror()
    log.close()
    return data_dir


def rewrite(audit_dir: Path, records: Records) -> None:
    for path in segment_paths(audit_dir):
        path.unlink()
    lines = b"".join(canonical(r) + b"\n" for r in records)
    (audit_dir / "audit-000001.jsonl").write_bytes(lines)


def rewrite_checkpoints(audit_dir: Path, checkpoints: Records) -> None:
    data = b"".join(canonical(c) + b"\n" for c in checkpoints)
    (audit_dir / "checkpoints.jsonl").write_bytes(data)


def change_field(records: Records) -> Records:
    records[6]["actor"] = "mallory"
    return records


def delete_record(records: Records) -> Records:
    return records[:11] + records[12:]


def swap_records(records: Records) -> Records:
    records[14], records[15] = records[15], records[14]
    return records


def truncate_tail(records: Records) -> Records:
    return records[:25]


def rewrite_without_key(records: Records) -> Records:
    """Change record 7 and recompute every hash after it: the chain is whole again."""
    records[6]["outcome"] = "denied"
    prev = records[5]["hash"]
    for record in records[6:]:
        record["prev"] = prev
        record["hash"] = prev = record_hash(record)
    return records


RECORD_CASES: list[tuple[str, Callable[[Records], Records], int, str]] = [
    ("a changed field", change_field, 7, "record 7 was altered"),
    ("a deleted record", delete_record, 12, "record 12 is missing or out of order"),
    ("two swapped records", swap_records, 15, "record 15 is missing or out of order"),
    ("a truncated tail", truncate_tail, 26, "log truncated: checkpoint at seq 30, signed"),
    ("a rewrite without the key", rewrite_without_key, 10, "records up to seq 10 differ"),
]


def forge_checkpoint(checkpoints: Records) -> Records:
    checkpoints[1]["root"] = "ab" * 32
    return checkpoints


def sign_with_another_key(checkpoints: Records) -> Records:
    other = AuditSigner(Ed25519PrivateKey.generate())
    checkpoints[1]["key_id"] = other.key_id
    checkpoints[1]["signature"] = other.sign(checkpoint_message(checkpoints[1]))
    return checkpoints


def another_key_claiming_the_pinned_id(checkpoints: Records) -> Records:
    other = AuditSigner(Ed25519PrivateKey.generate())
    checkpoints[1]["signature"] = other.sign(checkpoint_message(checkpoints[1]))
    return checkpoints


CHECKPOINT_CASES: list[tuple[str, Callable[[Records], Records], int, str]] = [
    ("a forged checkpoint", forge_checkpoint, 20, "checkpoint at seq 20: forged"),
    ("another key", sign_with_another_key, 20, "which is not pinned"),
    ("another key, pinned id", another_key_claiming_the_pinned_id, 20, "forged"),
]


def verify_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["audit", "verify", *args])
    out = capsys.readouterr().out
    first, _, rest = out.partition("\n")
    return code, rest if first.startswith("trust:") else out  # the trust line is tested apart


def test_the_untouched_log_verifies(log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(segment_paths(log_dir / "audit")) == 4  # 30 records in segments of 8
    code, out = verify_cli(capsys, "--data-dir", str(log_dir))
    assert code == 0
    assert out.startswith("verified 30 records, 3 checkpoints, last checkpoint at seq 30")


@pytest.mark.parametrize(("case", "tamper", "seq", "reason"), RECORD_CASES)
def test_tampered_records_in_the_files_are_detected_and_named(
    log_dir: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    tamper: Callable[[Records], Records],
    seq: int,
    reason: str,
) -> None:
    audit_dir = log_dir / "audit"
    rewrite(audit_dir, tamper(list(read_records(audit_dir))))
    code, out = verify_cli(capsys, "--data-dir", str(log_dir))
    assert code == 1, case
    assert out.startswith(f"FAILED at record {seq}: "), out
    assert reason in out, out


@pytest.mark.parametrize(("case", "tamper", "seq", "reason"), CHECKPOINT_CASES)
def test_tampered_checkpoints_are_detected_and_named(
    log_dir: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    tamper: Callable[[Records], Records],
    seq: int,
    reason: str,
) -> None:
    audit_dir = log_dir / "audit"
    rewrite_checkpoints(audit_dir, tamper(read_checkpoints(audit_dir)))
    code, out = verify_cli(capsys, "--data-dir", str(log_dir), "--json")
    assert code == 1, case
    import json

    result = json.loads(out)
    assert result["first_bad_seq"] == seq
    assert reason in result["reason"]
    assert result["last_checkpoint_seq"] == 10  # the checkpoint before the bad one still holds


def test_only_pinned_keys_are_trusted(log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = log_dir / "other"
    _, public = generate_signing_key(other)
    code, out = verify_cli(capsys, "--data-dir", str(log_dir), "--pubkey", str(public))
    assert code == 1
    assert out.startswith("FAILED at record 10: checkpoint at seq 10: signed by key")


async def _rebuild_stream(client: aioredis.Redis, records: Records) -> None:
    await client.delete(keys.AUDIT)  # entries cannot be edited in place: rebuild the stream
    for position, record in enumerate(records, 1):
        await client.xadd(keys.AUDIT, {"r": canonical(record)}, id=f"{position}-0")


@pytest.mark.parametrize(("case", "tamper", "seq", "reason"), RECORD_CASES)
async def test_tampered_records_in_redis_are_detected_and_named(
    log_dir: Path,
    redis_client: aioredis.Redis,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    case: str,
    tamper: Callable[[Records], Records],
    seq: int,
    reason: str,
) -> None:
    log = AuditLog(redis_client)
    await _rebuild_stream(redis_client, tamper(await log.read(limit=100)))
    code, out = await _in_thread(
        verify_cli, capsys, "--data-dir", str(log_dir), "--redis", redis_url
    )
    assert code == 1, case
    assert out.startswith(f"FAILED at record {seq}: "), out
    assert reason in out, out


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run a CLI entry (which calls asyncio.run) outside the test's event loop."""
    import asyncio

    return await asyncio.to_thread(func, *args)
