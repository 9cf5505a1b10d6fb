"""The tamper table: every rewrite tried, verified by default, with --pin and with --witness.

Each case builds a real log in Redis (30 records, the schedule signing every 10,
files mirrored, every checkpoint also handed to a witness file by the monitor's
own witness sender), tampers with the data directory as an intruder with write
access to it (but not to the witness, nor the security officer's notes) would,
then runs ``watchfloor audit verify`` three ways. ``EXPECTED`` is the table
docs/audit.md shows: True = caught (exit 1), False = passes (a documented
limit of that mode).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.security.test_audit_tamper import rewrite
from watchfloor.cli import main
from watchfloor.security.audit import AuditLog
from watchfloor.security.audit_chain import canonical, checkpoint_message, merkle_root, record_hash
from watchfloor.security.audit_files import read_checkpoints, read_records, segment_paths
from watchfloor.security.audit_trust import fingerprint, record_first_key
from watchfloor.security.audit_witness import file_witness
from watchfloor.security.signer import AuditSigner, generate_signing_key, load_signer

Records = list[dict[str, Any]]
CONFIG = "[security]\ncheckpoint_every = 10\ncheckpoint_interval_s = 60\n"


@pytest.fixture
async def stack(redis_client: aioredis.Redis, data_dir: Path, tmp_path: Path) -> dict[str, Any]:
    (data_dir / "watchfloor.toml").write_text(CONFIG)
    keys_dir = data_dir / "keys"
    generate_signing_key(keys_dir)
    signer = load_signer(keys_dir)
    record_first_key(keys_dir, signer.public_key, "2026-12-01T00:00:00.000Z")
    witness = tmp_path / "elsewhere" / "witness.jsonl"
    witness.parent.mkdir()
    log = AuditLog(
        redis_client,
        signer,
        files_dir=data_dir / "audit",
        checkpoint_every=10,
        witnesses=[file_witness(witness)],
    )
    for i in range(30):
        await log.append(f"user{i % 3}", "duty_manager", "incident.ack", f"inc-{i}")
        if (i + 1) % 10 == 0:
            await log.checkpoint()
    await log.mirror()
    assert log.witnesses is not None
    assert await log.witnesses.send(log.checkpoints) == 3
    log.close()
    return {"dir": data_dir, "pin": fingerprint(signer.public_key), "witness": witness}


def write_checkpoints(audit_dir: Path, checkpoints: Records) -> None:
    (audit_dir / "checkpoints.jsonl").write_bytes(
        b"".join(canonical(c) + b"\n" for c in checkpoints)
    )


def rechain(records: Records, start: int = 0) -> Records:
    prev = records[start - 1]["hash"] if start else "0" * 64
    for record in records[start:]:
        record["prev"] = prev
        record["hash"] = prev = record_hash(record)
    return records


def resign(records: Records, signer: AuditSigner, every: int = 10) -> Records:
    """Checkpoints over ``records`` signed by ``signer``, on the schedule."""
    checkpoints = []
    for size in range(every, len(records) + 1, every):
        leaves = [r["hash"] for r in records[:size]]
        cp = {"size": size, "head_hash": leaves[-1], "root": merkle_root(leaves),
              "at": records[size - 1]["at"], "key_id": signer.key_id}  # fmt: skip
        cp["signature"] = signer.sign(checkpoint_message(cp))
        checkpoints.append(cp)
    return checkpoints


def rewritten(d: Path) -> Records:
    records = list(read_records(d / "audit"))
    records[6]["actor"] = "mallory"
    return rechain(records, 6)


def attacker_key_as_retired(d: Path) -> None:
    """Rewrite, re-sign with one's own key, drop it in as a retired key."""
    records, mallory = rewritten(d), AuditSigner(Ed25519PrivateKey.generate())
    rewrite(d / "audit", records)
    write_checkpoints(d / "audit", resign(records, mallory))
    mallory_pem = mallory.public_key.public_bytes(*_pem_args())
    (d / "keys" / "audit-signing-2025.pub.pem").write_bytes(mallory_pem)


def attacker_key_over_current(d: Path) -> None:
    records, mallory = rewritten(d), AuditSigner(Ed25519PrivateKey.generate())
    rewrite(d / "audit", records)
    write_checkpoints(d / "audit", resign(records, mallory))
    (d / "keys" / "audit-signing.pub.pem").write_bytes(
        mallory.public_key.public_bytes(*_pem_args())
    )
    (d / "keys" / "audit-key-chain.jsonl").unlink()  # and the chain that names the real key


def _pem_args() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


def delete_checkpoints(d: Path) -> None:
    (d / "audit" / "checkpoints.jsonl").unlink()


def delete_one_checkpoint(d: Path) -> None:
    checkpoints = read_checkpoints(d / "audit")
    write_checkpoints(d / "audit", [checkpoints[0], checkpoints[2]])


def rewrite_and_delete_checkpoints(d: Path) -> None:
    rewrite(d / "audit", rewritten(d))
    delete_checkpoints(d)


def rewrite_short_unsigned(d: Path) -> None:
    """A fresh 8-record log, no checkpoint: fits the schedule, so only anchors catch it."""
    rewrite(d / "audit", rechain(list(read_records(d / "audit"))[:8]))
    delete_checkpoints(d)


def empty_log(d: Path) -> None:
    for path in segment_paths(d / "audit"):
        path.write_bytes(b"")
    delete_checkpoints(d)


def cut_at_a_checkpoint(d: Path) -> None:
    rewrite(d / "audit", list(read_records(d / "audit"))[:20])
    write_checkpoints(d / "audit", read_checkpoints(d / "audit")[:2])


def change_a_field(d: Path) -> None:
    records = list(read_records(d / "audit"))
    records[6]["actor"] = "mallory"
    rewrite(d / "audit", records)


def untouched(d: Path) -> None:
    return None


# case -> (tamper, caught by default, caught with --pin, caught with --witness)
EXPECTED: dict[str, tuple[Callable[[Path], None], bool, bool, bool]] = {
    "untouched": (untouched, False, False, False),
    "a field changed": (change_a_field, True, True, True),
    "re-signed, attacker key added as audit-signing-2025.pub.pem": (
        attacker_key_as_retired, False, True, True),
    "re-signed, attacker key over audit-signing.pub.pem": (
        attacker_key_over_current, False, True, True),
    "checkpoints.jsonl deleted": (delete_checkpoints, True, True, False),
    "one checkpoint deleted": (delete_one_checkpoint, True, True, False),
    "rewritten, hashes recomputed, checkpoints deleted": (
        rewrite_and_delete_checkpoints, True, True, True),
    "rewritten as a short unsigned log": (rewrite_short_unsigned, False, True, True),
    "emptied": (empty_log, False, True, True),
    "cut back to a checkpoint": (cut_at_a_checkpoint, False, False, True),
}  # fmt: skip


def verify(capsys: pytest.CaptureFixture[str], d: Path, *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", "--data-dir", str(d), *extra])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("case", list(EXPECTED))
def test_the_tamper_table(stack: dict[str, Any], capsys: pytest.CaptureFixture[str], case: str):
    tamper, by_default, with_pin, with_witness = EXPECTED[case]
    d = stack["dir"]
    tamper(d)
    default_code, default_out = verify(capsys, d)
    assert "UNPINNED" in default_out
    try:
        pin_code, pin_out = verify(capsys, d, "--pin", stack["pin"])
    except Exception as exc:  # a pin that matches no key anywhere: the command refuses
        pin_code, pin_out = 1, str(exc)
    witness_code, witness_out = verify(capsys, d, "--witness", str(stack["witness"]))
    assert (default_code == 1, pin_code == 1, witness_code == 1) == (
        by_default,
        with_pin,
        with_witness,
    ), (default_out, pin_out, witness_out)


def test_deleted_checkpoints_are_named_as_a_schedule_gap(stack, capsys):
    delete_checkpoints(stack["dir"])
    code, out = verify(capsys, stack["dir"], "--json")
    result = json.loads(out)
    assert (code, result["first_bad_seq"]) == (1, 1)
    assert "checkpoint missing: records 1..11" in result["reason"]
    assert "every 10 records or 60 s" in result["reason"]


def test_a_witness_names_the_rewritten_range(stack, capsys):
    rewrite_and_delete_checkpoints(stack["dir"])
    code, out = verify(capsys, stack["dir"], "--witness", str(stack["witness"]))
    assert code == 1
    assert "FAILED at record 10: witness checkpoint at seq 10: records up to seq 10 differ" in out


def test_a_key_rotation_is_followed_from_the_pin_and_a_forged_one_is_not(stack, capsys, redis_url):
    d = stack["dir"]
    assert main(["keys", "rotate-audit", "--data-dir", str(d), "--redis", redis_url]) == 0
    out = capsys.readouterr().out
    assert "handed on by the old key" in out
    # the chain names the new key, signed by the old one; the pin still verifies everything
    chain = [
        json.loads(line) for line in (d / "keys" / "audit-key-chain.jsonl").read_text().splitlines()
    ]
    assert [e["previous"] for e in chain] == [None, stack["pin"]]
    code, out = verify(capsys, d, "--pin", stack["pin"])
    assert code == 0, out
    assert "trust: pinned key(s)" in out and chain[1]["fingerprint"][:16] in out

    # an intruder appends an entry handing the pin on to their own key: not signed by it
    mallory = AuditSigner(Ed25519PrivateKey.generate())
    forged = {**chain[1], "key": mallory.public_key.public_bytes_raw().hex(),
              "fingerprint": fingerprint(mallory.public_key), "signature": "00" * 64}  # fmt: skip
    with (d / "keys" / "audit-key-chain.jsonl").open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    code, out = verify(capsys, d, "--pin", stack["pin"])
    assert "is not signed by its predecessor" in out
    assert mallory.key_id not in out.splitlines()[0]


def test_a_log_cut_below_its_size_at_rotation_fails_against_the_pin(stack, capsys, redis_url):
    d = stack["dir"]
    assert main(["keys", "rotate-audit", "--data-dir", str(d), "--redis", redis_url]) == 0
    capsys.readouterr()
    cut_at_a_checkpoint(d)  # 20 records; the rotation recorded 30 (+ its own record)
    code, out = verify(capsys, d, "--pin", stack["pin"])
    assert code == 1
    assert "log shortened: it held 30 records when the signing key was rotated" in out


def test_keys_init_shows_the_fingerprint_to_pin(data_dir: Path, capsys):
    assert main(["keys", "init", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    fp = fingerprint(load_signer(data_dir / "keys").public_key)
    assert f"audit signing key fingerprint: {fp[:4]} {fp[4:8]}" in out
    code, _ = verify(capsys, data_dir, "--pin", fp[:8] + " " + fp[8:])
    assert code == 1  # an empty log proves nothing against a pin
