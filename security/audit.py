"""The tamper-evident audit log: one hash chain in Redis, shared by every process.

:class:`AuditLog` appends records to ``keys.AUDIT`` (a stream whose entry id is
``{seq}-0`` and whose field ``r`` holds the record's canonical JSON, the very
bytes that are hashed) and keeps the chain head in ``keys.AUDIT_HEAD``. An
append is a compare-and-set: the client computes the record and its SHA-256
(Redis Lua has none) for the head it believes in, and a small Lua script adds
it only if the head is still that one, else answers the current head and the
client retries. We use a script rather than WATCH/MULTI because a MULTI does
not roll back: a refused XADD would still let the head move. Two processes
appending at once therefore never fork the chain.

The monitor runs :meth:`AuditLog.run`: it signs checkpoints (every
``checkpoint_every`` records or ``checkpoint_interval_s``), mirrors records and
checkpoints to append-only files (``security.audit_files``) and, when Redis
has lost records the files still hold (wiped, or restarted from an older
snapshot), writes them back so the chain continues where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.exceptions import ResponseError

from watchfloor.core import keys
from watchfloor.core.config import Config
from watchfloor.security.audit_chain import (
    GENESIS,
    AuditConflict,
    AuditError,
    AuditIntegrityError,
    Frontier,
    VerifyResult,
    canonical,
    checkpoint_message,
    clean_details,
    record_hash,
    utc_now,
    verify_records,
)
from watchfloor.security.audit_files import AuditMirror
from watchfloor.security.audit_witness import Witness, WitnessSender, witnesses_from
from watchfloor.security.signer import (
    AuditSigner,
    SignerError,
    default_public_keys,
    generate_signing_key,
    load_signer,
)

logger = logging.getLogger(__name__)

APPEND_DEADLINE_S = 10.0
"""How long an append keeps losing the race for the head before it gives up."""
READ_CHUNK = 1000

_APPEND_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local seq, hash = cur[1] or '0', cur[2] or ''
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {0, seq, hash} end
local added = redis.pcall('XADD', KEYS[2], ARGV[3] .. '-0', 'r', ARGV[5])
if type(added) == 'table' and added.err then
  return redis.error_reply('audit stream is ahead of its head: ' .. added.err)
end
redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'hash', ARGV[4])
return {1, ARGV[3], ARGV[4]}
"""


class AuditLog:
    """Append to, read, checkpoint and mirror the audit chain."""

    def __init__(
        self,
        redis: aioredis.Redis,
        signer: AuditSigner | None = None,
        *,
        files_dir: str | Path | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 60.0,
        segment_records: int = 100_000,
        tick_s: float = 1.0,
        public_keys: Sequence[Ed25519PublicKey] = (),
        redis_keep: int = 0,
        witnesses: Sequence[Witness] = (),
    ) -> None:
        self.redis = redis
        self.signer = signer
        self.public_keys = list(public_keys) or ([signer.public_key] if signer else [])
        """Keys the files are verified with before a restore (current and retired)."""
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self.tick_s = tick_s
        self.redis_keep = redis_keep
        """Records kept in Redis once mirrored and signed (0: all); see :meth:`trim`."""
        self._append_script = redis.register_script(_APPEND_LUA)
        self._head: tuple[int, str] = (0, "")
        self._frontier: Frontier | None = None
        self._mirror = AuditMirror(self, files_dir, segment_records) if files_dir else None
        self._lock = asyncio.Lock()
        self.conflicts = 0
        """Appends that lost the race for the head and were retried (a metric)."""
        self.witnesses = WitnessSender(redis, list(witnesses)) if witnesses else None
        self.on_problem: ProblemHook | None = None
        """Called once per distinct integrity problem (the monitor opens an incident)."""

    # Appending and reading ---------------------------------------------------

    async def append(
        self,
        actor: str,
        role: str,
        action: str,
        target: str,
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add one record at the head of the chain; return it (with ``seq`` and ``hash``)."""
        fields = {
            "actor": str(actor),
            "role": str(role),
            "action": str(action),
            "target": str(target),
            "outcome": str(outcome),
            "details": clean_details(details or {}),
        }
        async with self._lock:  # one append in flight per process: no self-inflicted races
            deadline = time.monotonic() + APPEND_DEADLINE_S
            for attempt in itertools.count():
                seq, prev = self._head
                if seq == 0 and self.files_dir is not None:
                    seq, prev = await self._restore_before_genesis()
                record = {"seq": seq + 1, "at": utc_now(), **fields, "prev": prev or GENESIS}
                record["hash"] = record_hash(record)
                if await self._compare_and_append(seq, prev, record):
                    return record
                self.conflicts += 1
                if time.monotonic() > deadline:
                    break
                # The script told us the new head: retry at once, so a loser is not
                # starved by a busy writer; only a long losing streak gets a small jitter.
                if attempt >= 10:
                    await asyncio.sleep(random.uniform(0, 0.001))
        raise AuditConflict(f"could not append {action} within {APPEND_DEADLINE_S:.0f} s")

    async def _compare_and_append(self, seq: int, prev: str, record: dict[str, Any]) -> bool:
        """Add ``record`` if the head is still ``(seq, prev)``; learn the head either way."""
        try:
            done, now_seq, now_hash = await self._append_script(
                keys=[keys.AUDIT_HEAD, keys.AUDIT],
                args=[str(seq), prev, str(seq + 1), record["hash"], canonical(record)],
            )
        except ResponseError as exc:
            raise AuditIntegrityError(str(exc)) from None
        self._head = (int(now_seq), _text(now_hash))
        return bool(done)

    async def _restore_before_genesis(self) -> tuple[int, str]:
        """An empty Redis whose files hold history (wiped): continue that chain, not a new one."""
        try:
            await self.restore()
        except AuditError:
            logger.exception("audit restore failed; appending to the chain Redis has")
        return await self.head()

    async def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last record; ``(0, "")`` for an empty log."""
        seq, value = await self.redis.hmget(keys.AUDIT_HEAD, ["seq", "hash"])
        self._head = (int(seq or 0), _text(value))
        return self._head

    async def read(self, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Records with ``seq > after``, oldest first, at most ``limit``."""
        entries: Any = await self.redis.xrange(keys.AUDIT, min=f"{after + 1}-0", count=limit)
        return [json.loads(fields[b"r"]) for _, fields in entries]

    async def scan(self, chunk: int = READ_CHUNK) -> AsyncIterator[list[dict[str, Any]]]:
        """Every record, in stream order, ``chunk`` at a time (paged by entry id, not seq,
        so a verifier sees a tampered stream exactly as it is)."""
        start = "-"
        while True:
            entries: Any = await self.redis.xrange(keys.AUDIT, min=start, count=chunk)
            if not entries:
                return
            yield [json.loads(fields[b"r"]) for _, fields in entries]
            start = "(" + _text(entries[-1][0])

    async def checkpoints(self, after: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        """Signed checkpoints with ``size > after``, oldest first."""
        entries: Any = await self.redis.xrange(
            keys.AUDIT_CHECKPOINTS, min=f"{after + 1}-0", count=limit
        )
        return [json.loads(fields[b"c"]) for _, fields in entries]

    async def last_checkpoint(self) -> dict[str, Any] | None:
        entries: Any = await self.redis.xrevrange(keys.AUDIT_CHECKPOINTS, count=1)
        if not entries:
            return None
        fields = entries[0][1]
        checkpoint = json.loads(fields[b"c"])
        if b"f" in fields:
            checkpoint["_frontier"] = json.loads(fields[b"f"])
        return checkpoint

    # Checkpoints ---------------------------------------------------------------

    async def checkpoint(self, size: int | None = None) -> dict[str, Any] | None:
        """Sign a checkpoint over records ``1..size`` (default: all so far).

        None when nothing is new past the last checkpoint (or another process
        signed that size first).
        """
        if self.signer is None:
            raise AuditError("no audit signing key: run 'watchfloor keys init'")
        seq, _ = await self.head()
        seq = min(seq, size) if size else seq
        last = await self.last_checkpoint()
        last_size = int(last["size"]) if last else 0
        if seq <= last_size:
            return None
        frontier = await self._frontier_at(last)
        head = await self._extend(frontier, last["head_hash"] if last else GENESIS, seq)
        checkpoint: dict[str, Any] = {
            "size": seq,
            "head_hash": head,
            "root": frontier.root(),
            "at": utc_now(),
            "key_id": self.signer.key_id,
        }
        checkpoint["signature"] = self.signer.sign(checkpoint_message(checkpoint))
        fields: dict[Any, Any] = {
            "c": canonical(checkpoint),
            "f": json.dumps(frontier.hashes),
        }
        try:
            await self.redis.xadd(keys.AUDIT_CHECKPOINTS, fields, id=f"{seq}-0")
        except ResponseError:  # another process signed this size (or a later one) first
            return None
        self._frontier = frontier
        logger.info("audit checkpoint size=%d key_id=%s", seq, self.signer.key_id)
        return checkpoint

    async def _frontier_at(self, last: Mapping[str, Any] | None) -> Frontier:
        size = int(last["size"]) if last else 0
        if self._frontier is not None and self._frontier.size == size:
            return self._frontier.copy()
        if last is not None and "_frontier" in last:
            return Frontier(size, last["_frontier"])
        frontier = Frontier()
        await self._extend(frontier, GENESIS, size)  # restored checkpoints carry no frontier
        return frontier

    async def _extend(self, frontier: Frontier, prev: str, upto: int) -> str:
        """Add records ``frontier.size+1 .. upto`` after checking their links; return last hash."""
        while frontier.size < upto:
            records = await self.read(frontier.size, min(READ_CHUNK, upto - frontier.size))
            if not records:
                raise AuditIntegrityError(f"audit record {frontier.size + 1} is missing in Redis")
            for record in records:
                seq = frontier.size + 1
                if record.get("seq") != seq or record_hash(record) != record.get("hash"):
                    raise AuditIntegrityError(f"audit record {seq} in Redis was altered")
                if record.get("prev") != prev:
                    raise AuditIntegrityError(f"audit record {seq} in Redis breaks the chain")
                frontier.append(bytes.fromhex(record["hash"]))
                prev = record["hash"]
        return prev

    # Files: mirror and restore (security.audit_files.AuditMirror) ------------------

    @property
    def files_dir(self) -> Path | None:
        """Directory of the mirrored files (None without one, or while another process mirrors)."""
        return self._mirror.directory if self._mirror else None

    async def mirror(self) -> int:
        """Append records and checkpoints not yet in the files; return records written."""
        return await self._mirror.mirror() if self._mirror else 0

    async def restore(self) -> int:
        """Write back records the files hold and Redis lost; return how many."""
        return await self._mirror.restore() if self._mirror else 0

    # The monitor's task -------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Restore, then mirror and checkpoint until ``stop``; a last pass on the way out.

        The first pass signs whatever is pending at once: records appended while no
        monitor ran must not wait another interval (the verifier checks the schedule).
        """
        last_checkpoint_at = -math.inf
        last_error = ""
        while True:
            stopping = stop.is_set()
            try:
                if await self._tick(last_checkpoint_at, final=stopping):
                    last_checkpoint_at = time.monotonic()
                last_error = ""
            except AuditIntegrityError as exc:
                # a fork or a rewritten tail: nothing is signed or mirrored until a
                # human repairs it, so it must be loud: a problem and an incident
                if str(exc) != last_error:
                    logger.error("audit integrity problem, signing stopped: %s", exc)
                    await self._raise_problem(str(exc))
                last_error = str(exc)
            except Exception as exc:  # the task boundary: keep the log task alive
                if str(exc) != last_error:  # once per distinct failure, not every tick
                    logger.exception("audit log task failed a pass")
                last_error = str(exc)
            if stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)
        self.close()

    async def _tick(self, last_checkpoint_at: float, *, final: bool) -> bool:
        await self.restore()
        await self.mirror()
        seq, _ = await self.head()
        signed = False
        if self.signer is not None:
            last = await self.last_checkpoint()
            last_size = int(last["size"]) if last else 0
            # one every ``checkpoint_every`` records exactly, even after a burst...
            for size in range(last_size + self.checkpoint_every, seq + 1, self.checkpoint_every):
                signed = await self.checkpoint(size) is not None or signed
                last_size = size
            due = time.monotonic() - last_checkpoint_at >= self.checkpoint_interval_s
            if seq > last_size and (due or final):  # ...and the rest when due
                signed = await self.checkpoint() is not None or signed
            if signed:
                await self.mirror()
        await self._clear_problem()
        if self.witnesses is not None:
            await self.witnesses.send(self.checkpoints)
            await self._witness_problems()
        await self.trim()
        return signed

    # Problems: what keeps the audit from signing, kept where /healthz reads it ------

    async def problems(self) -> dict[str, dict[str, Any]]:
        """``{name: {"reason", "since"}}`` from ``keys.AUDIT_PROBLEMS``."""
        return await read_problems(self.redis)

    async def _raise_problem(self, reason: str) -> None:
        try:
            # The first detection says where the chain broke; records appended after it
            # (the incident's own playbook, say) fail too, but are consequences: kept apart.
            known = (await self.problems()).get("integrity")
            first = {"reason": reason, "since": time.time()} if known is None else known
            value = json.dumps({**first, "latest": reason})
            await self.redis.hset(keys.AUDIT_PROBLEMS, "integrity", value)
            if self.on_problem is not None:
                await self.on_problem("integrity", reason)
        except Exception:  # Redis down too: the next pass tries again
            logger.exception("could not report the audit integrity problem")

    async def _clear_problem(self) -> None:
        if await self.redis.hdel(keys.AUDIT_PROBLEMS, "integrity"):
            logger.warning("audit integrity problem cleared: signing and mirroring resumed")

    async def _witness_problems(self) -> None:
        assert self.witnesses is not None
        for witness in self.witnesses.witnesses:
            name = f"witness:{witness.name}"
            why = self.witnesses.failing.get(witness.name)
            if why is None:
                await self.redis.hdel(keys.AUDIT_PROBLEMS, name)
            elif not await self.redis.hexists(keys.AUDIT_PROBLEMS, name):
                value = json.dumps({"reason": why, "since": time.time()})
                await self.redis.hset(keys.AUDIT_PROBLEMS, name, value)

    async def trim(self) -> int:
        """Drop from Redis the records before a checkpoint that are also in the files.

        Trimming only at a checkpoint that stored its Merkle frontier keeps what
        Redis holds verifiable on its own (:meth:`verify` anchors there), and only
        this process's mirror knows what the files hold. Returns the new first seq.
        """
        mirrored = self._mirror.mirrored() if self._mirror else (0, 0)
        if self.redis_keep <= 0 or not mirrored[0]:
            return 0
        seq, _ = await self.head()
        limit = min(mirrored[0], mirrored[1], seq - self.redis_keep)
        if limit <= 0:
            return 0
        entries: Any = await self.redis.xrevrange(keys.AUDIT_CHECKPOINTS, max=f"{limit}-0", count=5)
        size = next((_seq_of(i) for i, fields in entries if b"f" in fields), 0)
        if size:
            await self.redis.xtrim(keys.AUDIT, minid=f"{size + 1}-0", approximate=False)
        return size + 1 if size else 0

    async def verify(self, public_keys: Sequence[Ed25519PublicKey] = ()) -> VerifyResult:
        """Verify what Redis holds with pinned keys (default: this log's own).

        A trimmed Redis is verified from the checkpoint it was trimmed at: that
        checkpoint's signed root proves the stored frontier the walk starts from.
        """
        records = [record async for batch in self.scan() for record in batch]
        anchor = None
        if records and records[0].get("seq", 1) != 1:
            anchor = await self._anchor_before(int(records[0]["seq"]))
        return await asyncio.to_thread(
            verify_records,
            records,
            await self.checkpoints(),
            list(public_keys) or self.public_keys,
            anchor=anchor,
        )

    async def _anchor_before(self, first: int) -> dict[str, Any] | None:
        entries: Any = await self.redis.xrange(
            keys.AUDIT_CHECKPOINTS, min=f"{first - 1}-0", max=f"{first - 1}-0"
        )
        if not entries or b"f" not in entries[0][1]:
            return None
        checkpoint = json.loads(entries[0][1][b"c"])
        frontier = json.loads(entries[0][1][b"f"])
        return {"seq": first - 1, "hash": checkpoint["head_hash"], "frontier": frontier}

    def close(self) -> None:
        if self._mirror is not None:
            self._mirror.close()


ProblemHook = Callable[[str, str], Awaitable[None]]
"""``(problem name, reason)``: called when the audit stops being able to sign."""


async def read_problems(redis: aioredis.Redis) -> dict[str, dict[str, Any]]:
    """The audit's current problems (``/healthz`` lists them)."""
    raw: Any = await redis.hgetall(keys.AUDIT_PROBLEMS)
    found: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        try:
            found[_text(name)] = json.loads(value)
        except ValueError:
            found[_text(name)] = {"reason": _text(value)}
    return found


def _seq_of(entry_id: Any) -> int:
    return int(_text(entry_id).partition("-")[0])


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def open_audit(config: Config, redis: aioredis.Redis, *, create_keys: bool = False) -> AuditLog:
    """The audit log of a stack: signing key from ``DATA_DIR/keys``, files in ``DATA_DIR/audit``.

    Without a signing key (a process that only appends) checkpoints are left to
    the process that has one; ``create_keys`` makes the key first (``up``, tests).
    """
    keys_dir = config.path("keys")
    try:
        signer: AuditSigner | None = load_signer(keys_dir)
    except SignerError:
        if create_keys:
            generate_signing_key(keys_dir)
            signer = load_signer(keys_dir)
        else:
            logger.warning("no audit signing key in %s: checkpoints are not signed here", keys_dir)
            signer = None
    pinned = list(default_public_keys(keys_dir).values())
    if signer is not None and signer.public_key not in pinned:
        pinned.append(signer.public_key)
    return AuditLog(
        redis,
        signer,
        public_keys=pinned,
        files_dir=config.path("audit"),
        checkpoint_every=config.security.checkpoint_every,
        checkpoint_interval_s=config.security.checkpoint_interval_s,
        redis_keep=config.security.audit_redis_keep,
        witnesses=witnesses_from(config),
    )
