"""Repairing a forked audit chain: the signed files win over Redis, and the loser is kept.

A fork happens when Redis comes back from an older snapshot and someone appends
before the monitor restores (Redis's record N is not the files' record N), or
when someone rewrites Redis's records. The monitor then stops signing and
mirroring and reports an ``integrity`` problem; only a human decides. The
repair keeps the files' chain because it is the one that was mirrored, fsynced
and signed, that witnesses saw and that ``verify`` proves; Redis is a cache of
it. Redis's records from the first one that differs are not thrown away: they
are written to ``audit/forked-<time>.jsonl`` (evidence: they may be real
actions taken against the old snapshot, or a forgery), Redis is rebuilt from
the files, and an ``audit.repair`` record naming the fork point, the records
set aside, their file and its SHA-256 continues the chain.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchfloor.core import keys
from watchfloor.security.audit import AuditLog
from watchfloor.security.audit_chain import AuditIntegrityError, canonical, utc_now, verify_records
from watchfloor.security.audit_files import read_checkpoints, read_records, write_synced

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairReport:
    fork_at: int | None
    """First seq where Redis differed from the files (None: they agreed)."""
    set_aside: int
    saved_to: Path | None
    record: dict[str, Any] | None
    """The ``audit.repair`` record appended (None when nothing needed repair)."""


async def find_fork(log: AuditLog, file_hashes: dict[int, str]) -> tuple[int | None, list[Any]]:
    """The first seq whose Redis record differs from the files, and Redis's records from it.

    A record past the files' end counts as agreeing only if it chains to them (the
    mirror simply has not copied it yet)."""
    forked: list[dict[str, Any]] = []
    for_sure: int | None = None
    async for batch in log.scan():
        for record in batch:
            seq = record.get("seq")
            if for_sure is None and isinstance(seq, int) and _agrees(record, seq, file_hashes):
                file_hashes.setdefault(seq, str(record.get("hash")))
                continue
            if for_sure is None:
                for_sure = seq if isinstance(seq, int) else 0
            forked.append(record)
    return for_sure, forked


def _agrees(record: dict[str, Any], seq: int, file_hashes: dict[int, str]) -> bool:
    if seq in file_hashes:
        return file_hashes[seq] == record.get("hash")
    return record.get("prev") == file_hashes.get(seq - 1)


async def repair(log: AuditLog, directory: Path, actor: str, role: str) -> RepairReport:
    """Rebuild Redis's audit chain from the verified files; keep and audit what differed."""
    records = list(read_records(directory))
    result = verify_records(records, read_checkpoints(directory), log.public_keys)
    if not result.ok:
        raise AuditIntegrityError(
            f"the audit files themselves fail at record {result.first_bad_seq}: {result.reason}; "
            "they cannot win a repair (restore them from a backup or an export first)"
        )
    hashes = {int(r["seq"]): str(r["hash"]) for r in records}
    fork_at, forked = await find_fork(log, hashes)
    if fork_at is None:
        await log.redis.hdel(keys.AUDIT_PROBLEMS, "integrity")
        return RepairReport(None, 0, None, None)
    saved = directory / f"forked-{utc_now().replace(':', '')}.jsonl"
    data = b"".join(canonical(r) + b"\n" for r in forked)
    write_synced(saved, data, append=False)
    # files win: drop Redis's chain and write the files' one back (restore() checks them)
    await log.redis.delete(keys.AUDIT, keys.AUDIT_HEAD, keys.AUDIT_CHECKPOINTS)
    await log.restore()
    details = {
        "fork_at": fork_at,
        "set_aside": len(forked),
        "saved_to": saved.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "kept": "files",
        "why": "the files are mirrored, signed and witnessed; Redis differed from them",
    }
    record = await log.append(actor, role, "audit.repair", "audit-log", "ok", details)
    await log.redis.hdel(keys.AUDIT_PROBLEMS, "integrity")
    logger.warning("audit repaired fork_at=%d set_aside=%d file=%s", fork_at, len(forked), saved)
    return RepairReport(fork_at, len(forked), saved, record)


def summary(report: RepairReport) -> str:
    if report.fork_at is None:
        return "Redis and the audit files agree: nothing to repair"
    seq = report.record["seq"] if report.record else "?"
    return (
        f"repaired: Redis differed from the files from record {report.fork_at}; "
        f"{report.set_aside} Redis record(s) set aside in {report.saved_to}; the chain "
        f"continues from the files, audit.repair is record {seq}"
    )
