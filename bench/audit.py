"""Benchmark of the audit log: appends per second through Redis, and verification speed.

Run: ``python bench/audit.py [--n 5000] [--writers 1,2,4] [--redis URL]``.
Starts a private ``redis-server`` on 127.0.0.1 unless ``--redis`` is given
(never use a Redis that holds real data: the bench flushes it). Prints
appends/s with 1..N concurrent writers on separate connections (each append is
one compare-and-set round trip when uncontended) and with 8 tasks of one
process sharing a log, the mirror's records/s to
fsynced files, the checkpoint cost, and ``verify_records`` records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import EmbeddedRedis
from watchfloor.security.audit import AuditLog
from watchfloor.security.audit_chain import verify_records
from watchfloor.security.audit_files import read_checkpoints, read_records
from watchfloor.security.signer import generate_signing_key, load_signer

DETAILS = {
    "note": "客户来电投诉，手机 13812345678，已安抚",
    "incident": "inc-42",
    "severity": "major",
}


async def appends_per_second(
    url: str, n: int, writers: int, *, shared: bool = False
) -> tuple[float, int]:
    """Appends/s of ``writers`` concurrent writers sharing ``n`` appends: each with its own
    connection and log (like separate processes), or ``shared`` tasks of one log."""
    clients = [redis_connect(url) for _ in range(1 if shared else writers)]
    await clients[0].flushall()
    logs = [AuditLog(c) for c in clients] * (writers if shared else 1)

    async def write(log: AuditLog, count: int) -> None:
        for i in range(count):
            await log.append("bench", "admin", "incident.note", f"inc-{i}", details=DETAILS)

    start = time.perf_counter()
    await asyncio.gather(*(write(log, n // writers) for log in logs))
    elapsed = time.perf_counter() - start
    head, _ = await logs[0].head()
    for client in clients:
        await client.aclose()
    return head / elapsed, head


async def mirror_and_checkpoint(url: str, directory: Path) -> tuple[float, float, int]:
    """Mirror everything in Redis to files, then sign one checkpoint over it."""
    generate_signing_key(directory / "keys")
    client = redis_connect(url)
    log = AuditLog(client, load_signer(directory / "keys"), files_dir=directory / "audit")
    start = time.perf_counter()
    written = await log.mirror()
    mirror_s = time.perf_counter() - start
    start = time.perf_counter()
    await log.checkpoint()
    checkpoint_s = time.perf_counter() - start
    await log.mirror()
    log.close()
    await client.aclose()
    return written / mirror_s, checkpoint_s, written


def verify_rate(directory: Path) -> tuple[float, int]:
    signer = load_signer(directory / "keys")
    records = list(read_records(directory / "audit"))
    checkpoints = read_checkpoints(directory / "audit")
    start = time.perf_counter()
    result = verify_records(records, checkpoints, [signer.public_key])
    elapsed = time.perf_counter() - start
    assert result.ok, result.reason
    return len(records) / elapsed, result.records


async def run(url: str, n: int, writer_counts: list[int]) -> None:
    for writers in writer_counts:
        rate, total = await appends_per_second(url, n, writers)
        print(f"append   {writers} writer(s)  {total:6d} records  {rate:9,.0f} appends/s")
    rate, total = await appends_per_second(url, n, 8, shared=True)
    print(f"append   8 tasks, 1 log  {total:6d} records  {rate:9,.0f} appends/s")
    with tempfile.TemporaryDirectory() as tmp:
        rate, checkpoint_s, written = await mirror_and_checkpoint(url, Path(tmp))
        print(f"mirror   {written:6d} records to fsynced files  {rate:9,.0f} records/s")
        ms = checkpoint_s * 1e3
        print(f"checkpoint over {written} records (Merkle root + Ed25519)  {ms:.1f} ms")
        rate, count = verify_rate(Path(tmp))
        print(f"verify   {count:6d} records + 1 checkpoint  {rate:9,.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="appends per run")
    parser.add_argument("--writers", default="1,2,4", help="writer counts to try")
    parser.add_argument("--redis", help="a Redis URL to use (it is FLUSHED)")
    args = parser.parse_args()
    counts = [int(x) for x in args.writers.split(",")]
    if args.redis:
        asyncio.run(run(args.redis, args.n, counts))
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=False)
        url = server.start()
        try:
            asyncio.run(run(url, args.n, counts))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
