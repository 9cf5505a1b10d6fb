"""The audit log's cryptography, pure: canonical encoding, record hashes, Merkle tree, verification.

A record's ``hash`` is an RFC 6962 leaf hash, ``SHA-256(0x00 || canonical)``,
where ``canonical`` is the record without ``hash`` as sorted-key compact UTF-8
JSON. Each record carries the previous record's hash in ``prev`` (64 zeros for
record 1), so changing, removing or reordering a record breaks the chain. The
records' hashes are also the leaves of an RFC 6962 Merkle tree; a checkpoint
signs ``{size, head_hash, root, at, key_id}``, which lets a range of records be
proved offline from the compact "frontier" of the tree before it (see
:class:`Frontier`) without shipping the whole log.

:func:`verify_records` is the one verifier: the CLI, the API and the tests all
use it. It needs nothing but the records, the checkpoints and pinned public keys.
:func:`clean_details` (PII masked through ``security.pii``) and :func:`utc_now`
shape the fields of a new record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from watchfloor.security.audit_schedule import Schedule, ScheduleWatch
from watchfloor.security.signer import as_pinned, verify_signature

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
"""``prev`` of record 1."""
CHECKPOINT_CONTEXT = b"watchfloor-audit-checkpoint-v1\n"
"""Prefix of the signed bytes, so a checkpoint signature means nothing elsewhere."""
RECORD_FIELDS = ("seq", "at", "actor", "role", "action", "target", "outcome", "details", "prev")
CHECKPOINT_FIELDS = ("size", "head_hash", "root", "at", "key_id")


class AuditError(Exception):
    """The audit log could not do what was asked."""


class AuditConflict(AuditError):
    """An append lost the race for the chain head too many times."""


class AuditIntegrityError(AuditError):
    """Redis and the files disagree, or the chain in Redis is broken: a human must look."""


MAX_STRING = 2000
"""Longest string kept in ``details``; longer ones are cut (the log is not a data store)."""


def utc_now() -> str:
    """UTC RFC 3339 time with milliseconds (``2026-11-23T18:40:00.123Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_masker: Callable[[str], str] | None = None


def _mask(text: str) -> str:
    global _masker
    if _masker is None:
        try:
            from watchfloor.security.pii import mask_text
        except ModuleNotFoundError as exc:
            if exc.name != "watchfloor.security.pii":
                raise
            logger.warning("security.pii is absent: audit details are not masked")
            mask_text = _unmasked
        _masker = mask_text
    return _masker(text)


def _unmasked(text: str) -> str:
    return text


def clean_details(value: Any) -> Any:
    """JSON-safe copy of ``details`` with PII masked in every string and long strings cut."""
    if isinstance(value, Mapping):
        return {str(k): clean_details(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [clean_details(v) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = _mask(str(value))
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"


def canonical(obj: Any) -> bytes:
    """Sorted-key, compact, UTF-8 JSON: the bytes that are hashed and signed."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def record_hash(record: Mapping[str, Any]) -> str:
    """Hex leaf hash of a record (its ``hash`` field, if present, is left out)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return leaf_hash(canonical(body)).hex()


def checkpoint_message(checkpoint: Mapping[str, Any]) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return CHECKPOINT_CONTEXT + canonical({k: checkpoint[k] for k in CHECKPOINT_FIELDS})


class Frontier:
    """The right edge of an RFC 6962 Merkle tree: roots of its perfect subtrees.

    Appending a leaf and computing the root are O(log n), so checkpoints never
    rehash the whole log. ``hashes`` (hex, largest subtree first) is also the
    anchor of an exported range: with it, the records after ``size`` and the
    signed root, a verifier proves the range belongs to the signed tree.
    """

    def __init__(self, size: int = 0, hashes: Sequence[str] = ()) -> None:
        heights = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(heights) != len(hashes):
            raise ValueError(f"a frontier of size {size} has {len(heights)} hashes")
        self.size = size
        self._nodes: list[tuple[int, bytes]] = [
            (h, bytes.fromhex(x)) for h, x in zip(heights, hashes, strict=True)
        ]

    def append(self, leaf: bytes) -> None:
        height, node = 0, leaf
        while self._nodes and self._nodes[-1][0] == height:
            node = node_hash(self._nodes.pop()[1], node)
            height += 1
        self._nodes.append((height, node))
        self.size += 1

    def root(self) -> str:
        if not self._nodes:
            return hashlib.sha256(b"").hexdigest()
        node = self._nodes[-1][1]
        for _, left in reversed(self._nodes[:-1]):
            node = node_hash(left, node)
        return node.hex()

    @property
    def hashes(self) -> list[str]:
        return [node.hex() for _, node in self._nodes]

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)


def merkle_root(leaves: Iterable[str]) -> str:
    """Root of the RFC 6962 tree over hex leaf hashes."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(bytes.fromhex(leaf))
    return frontier.root()


@dataclass(frozen=True)
class VerifyResult:
    """What a verification proved, or the first thing that is wrong and why."""

    ok: bool
    verified_upto: int
    """Last seq whose chain verified (0 when none)."""
    last_checkpoint_seq: int
    """Size of the last checkpoint whose signature and root verified (0 when none)."""
    first_bad_seq: int | None = None
    reason: str = ""
    records: int = 0
    checkpoints: int = 0
    from_seq: int = 1
    """First seq verified: above 1 for an exported range or a trimmed Redis."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_seq": self.from_seq,
            "ok": self.ok,
            "verified_upto": self.verified_upto,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "records": self.records,
            "checkpoints": self.checkpoints,
        }


class _Bad(Exception):
    def __init__(self, seq: int, reason: str, *, checkpoint: bool = False) -> None:
        super().__init__(reason)
        self.seq, self.reason, self.checkpoint = seq, reason, checkpoint


@dataclass
class _Walk:
    """Verification state while records stream past."""

    keys: dict[str, Ed25519PublicKey]
    checkpoints: list[Mapping[str, Any]]
    frontier: Frontier
    prev: str
    seq: int
    records: int = 0
    signed: int = 0
    done_checkpoints: int = 0
    pending: list[int] = field(default_factory=list)
    schedule: ScheduleWatch | None = None

    def record(self, record: Mapping[str, Any]) -> None:
        expected = self.seq + 1
        seq = record.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise _Bad(expected, f"record after seq {self.seq} has no valid seq")
        if seq > expected:
            raise _Bad(
                expected,
                f"record {expected} is missing or out of order (found seq {seq} in its place)",
            )
        if seq < expected:
            raise _Bad(seq, f"record {seq} is out of order (expected seq {expected})")
        if record_hash(record) != record.get("hash"):
            raise _Bad(seq, f"record {seq} was altered: its hash does not match its content")
        if record.get("prev") != self.prev:
            raise _Bad(seq, f"record {seq} does not chain to record {seq - 1} (prev mismatch)")
        self.frontier.append(bytes.fromhex(record["hash"]))
        self.prev, self.seq = record["hash"], seq
        self.records += 1
        if self.schedule is not None and (late := self.schedule.record(seq, record.get("at"))):
            raise _Bad(*late)
        self.reach_checkpoints()

    def reach_checkpoints(self) -> None:
        while self.checkpoints and self.checkpoints[0]["size"] == self.seq:
            self.check(self.checkpoints.pop(0), self.frontier.root(), self.prev)

    def check(self, checkpoint: Mapping[str, Any], root: str, head: str) -> None:
        size = checkpoint["size"]
        what = "witness checkpoint" if checkpoint.get("_witness") else "checkpoint"
        key = self.keys.get(str(checkpoint.get("key_id")))
        if key is None:
            reason = f"signed by key {checkpoint.get('key_id')}, which is not pinned"
        elif not verify_signature(key, checkpoint_message(checkpoint), checkpoint["signature"]):
            reason = "forged, its signature does not verify"
        elif checkpoint["head_hash"] != head:
            reason = f"records up to seq {size} differ from it (head hash)"
        elif checkpoint["root"] != root:
            reason = f"records up to seq {size} differ from it (Merkle root)"
        else:
            self.signed = size
            self.done_checkpoints += 1
            if self.schedule is not None and (
                late := self.schedule.checkpoint(size, checkpoint.get("at"))
            ):
                raise _Bad(*late)
            return
        raise _Bad(size, f"{what} at seq {size}: {reason}", checkpoint=True)


def _checked_checkpoints(checkpoints: Iterable[Mapping[str, Any]], after: int) -> list[Any]:
    result: list[Mapping[str, Any]] = []
    for cp in checkpoints:
        missing = [k for k in (*CHECKPOINT_FIELDS, "signature") if k not in cp]
        size = cp.get("size")
        if missing or not isinstance(size, int) or size < 1:
            raise _Bad(
                size if isinstance(size, int) else 0,
                f"malformed checkpoint: {cp!r:.80}",
                checkpoint=True,
            )
        if result and size < result[-1]["size"]:
            raise _Bad(size, f"checkpoint at seq {size} is out of order", checkpoint=True)
        if size >= after:  # one exactly at the anchor proves the anchor's frontier
            result.append(cp)
    return result


def verify_records(
    records: Iterable[Mapping[str, Any]],
    checkpoints: Iterable[Mapping[str, Any]],
    public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey],
    *,
    anchor: Mapping[str, Any] | None = None,
    tail: Sequence[str] = (),
    schedule: Schedule | None = None,
    witnessed: Sequence[Mapping[str, Any]] = (),
) -> VerifyResult:
    """Recompute the chain and check every checkpoint against pinned keys.

    ``anchor`` (``{"seq", "hash", "frontier"}``) starts the walk after record
    ``seq`` instead of at record 1 (an exported range). ``tail`` lists the leaf
    hashes of records after the last given one, up to the checkpoint covering it,
    so a range ending between two checkpoints is still proved by a signature.
    A checkpoint beyond the records (and the tail) means the log was truncated.
    ``schedule`` makes a run of records longer than the signing schedule allows a
    failure (a checkpoint was deleted); ``witnessed`` are checkpoints a witness
    received: the records must match each of them too, and reach the last.
    """
    start = int(anchor["seq"]) if anchor else 0
    walk: _Walk | None = None
    try:
        walk = _Walk(
            keys=as_pinned(public_keys),
            checkpoints=_merged(
                _checked_checkpoints(checkpoints, start),
                _checked_checkpoints(sorted(witnessed, key=_size_of), start),
            ),
            frontier=Frontier(start, anchor.get("frontier", ())) if anchor else Frontier(),
            prev=str(anchor["hash"]) if anchor else GENESIS,
            seq=start,
            schedule=ScheduleWatch(schedule, start) if schedule else None,
        )
        walk.reach_checkpoints()
        for record in records:
            walk.record(record)
        _finish(walk, tail)
    except _Bad as bad:
        return _result(walk, start, bad)
    except ValueError as exc:  # a frontier or hash that is not hex
        return _result(walk, start, _Bad(start + 1, f"malformed proof data: {exc}"))
    return _result(walk, start, None)


def _size_of(checkpoint: Mapping[str, Any]) -> int:
    size = checkpoint.get("size")
    return size if isinstance(size, int) else 0


def _merged(local: list[Any], witnessed: list[Any]) -> list[Any]:
    """Local and witnessed checkpoints in size order (a witness's marked as such)."""
    marked = [{**cp, "_witness": True} for cp in witnessed]
    return sorted([*local, *marked], key=_size_of)


def _finish(walk: _Walk, tail: Sequence[str]) -> None:
    frontier, head = walk.frontier.copy(), walk.prev
    position = walk.seq
    for leaf in tail:
        frontier.append(bytes.fromhex(leaf))
        head, position = leaf, position + 1
        while walk.checkpoints and walk.checkpoints[0]["size"] == position:
            walk.check(walk.checkpoints.pop(0), frontier.root(), head)
    if walk.checkpoints:
        size = walk.checkpoints[0]["size"]
        witnessed = walk.checkpoints[0].get("_witness")
        what = "a witness holds a checkpoint" if witnessed else "checkpoint"
        raise _Bad(
            walk.seq + 1,
            f"log truncated: {what} at seq {size}, signed, but the records end at seq {walk.seq}",
        )


def _result(walk: _Walk | None, start: int, bad: _Bad | None) -> VerifyResult:
    verified = walk.seq if walk else start
    if bad is not None and bad.checkpoint:
        # a checkpoint that fails discredits every record since the last good one
        verified = max(walk.signed if walk else 0, start)
    elif bad is not None:
        verified = max(min(verified, bad.seq - 1), start)
    return VerifyResult(
        ok=bad is None,
        verified_upto=verified,
        last_checkpoint_seq=walk.signed if walk else 0,
        first_bad_seq=None if bad is None else bad.seq,
        reason="" if bad is None else bad.reason,
        records=walk.records if walk else 0,
        checkpoints=walk.done_checkpoints if walk else 0,
        from_seq=start + 1,
    )


BUNDLE_FORMAT = "watchfloor-audit-bundle/1"


def make_bundle(
    records: Iterable[Mapping[str, Any]],
    checkpoints: Sequence[Mapping[str, Any]],
    since: int,
    until: int,
) -> dict[str, Any]:
    """An offline-verifiable export of records ``since..until`` from the whole log.

    The bundle carries the hash and Merkle frontier of record ``since - 1`` (the
    anchor), the records, every checkpoint from ``since - 1`` up to the first one
    at or after ``until``, and the leaf hashes between ``until`` and that
    checkpoint: enough to recompute its signed root without the rest of the log.
    Raises ValueError when the range is empty or not yet covered by a checkpoint.
    """
    covering = next((cp for cp in checkpoints if cp["size"] >= until), None)
    if covering is None:
        raise ValueError(f"no signed checkpoint covers seq {until} yet")
    end = int(covering["size"])
    anchor, chosen, tail = _split_range(records, since, until, end)
    if not chosen:
        raise ValueError(f"no records between seq {since} and {until}")
    return {
        "format": BUNDLE_FORMAT,
        "since": since,
        "until": until,
        "exported_at": utc_now(),
        "anchor": anchor,
        "records": chosen,
        "checkpoints": [dict(cp) for cp in checkpoints if since - 1 <= cp["size"] <= end],
        "tail": tail,
    }


def _split_range(
    records: Iterable[Mapping[str, Any]], since: int, until: int, end: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The anchor before ``since``, the records ``since..until``, the hashes up to ``end``."""
    frontier = Frontier()
    anchor: dict[str, Any] = {"seq": 0, "hash": GENESIS, "frontier": []}
    chosen: list[dict[str, Any]] = []
    tail: list[str] = []
    for record in records:
        seq = int(record["seq"])
        if seq > end:
            break
        if since <= seq <= until:
            chosen.append(dict(record))
        elif seq > until:
            tail.append(str(record["hash"]))
        frontier.append(bytes.fromhex(record["hash"]))
        if seq == since - 1:
            anchor = {"seq": seq, "hash": str(record["hash"]), "frontier": frontier.hashes}
    return anchor, chosen, tail


def verify_bundle(
    bundle: Mapping[str, Any],
    public_keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey],
) -> VerifyResult:
    """Verify an exported bundle with pinned keys only; its range must be signed to pass."""
    if bundle.get("format") != BUNDLE_FORMAT:
        return VerifyResult(False, 0, 0, None, f"not a {BUNDLE_FORMAT} bundle")
    try:
        anchor, until = bundle["anchor"], int(bundle["until"])
        records, checkpoints = list(bundle["records"]), list(bundle["checkpoints"])
        tail = [str(x) for x in bundle.get("tail", [])]
    except (KeyError, TypeError, ValueError) as exc:
        return VerifyResult(False, 0, 0, None, f"malformed bundle: {exc}")
    result = verify_records(records, checkpoints, public_keys, anchor=anchor, tail=tail)
    if not result.ok:
        return result
    if result.verified_upto != until:
        reason = f"the bundle ends at seq {result.verified_upto}, not at seq {until}"
        return _failed(result, result.verified_upto + 1, reason)
    if result.last_checkpoint_seq < until:
        reason = f"no signed checkpoint covers seq {until}: the range is not proved"
        return _failed(result, until, reason)
    return result


def _failed(result: VerifyResult, seq: int, reason: str) -> VerifyResult:
    return dataclasses.replace(result, ok=False, first_bad_seq=seq, reason=reason)
