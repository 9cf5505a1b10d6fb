"""Which audit signing keys a verifier trusts: a pinned fingerprint and the key chain from it.

A public key read from the same disk as the log proves nothing against whoever
can write that disk: they re-sign a rewritten log and drop their own key in. So
``keys init`` shows the signing key's *fingerprint* (SHA-256 of the raw public
key, 64 hex digits) for the security officer to keep elsewhere, and
``audit verify --pin FINGERPRINT`` trusts that key only. A rotation appends an
entry to ``keys/audit-key-chain.jsonl`` naming the new key, signed by the
previous one: from the pin, the verifier follows the entries each signed by a
key it already trusts. An entry also records the log's size at rotation, so a
log cut below it fails against the pin. Key material may come from any file on
disk: only a key whose fingerprint the pin (or a trusted entry) names is used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from watchfloor.security.keys import write_private
from watchfloor.security.signer import AuditSigner, SignerError, key_id, verify_signature

CHAIN_NAME: Final = "audit-key-chain.jsonl"
CHAIN_CONTEXT: Final = b"watchfloor-audit-key-chain-v1\n"
ENTRY_FIELDS: Final = ("key", "fingerprint", "previous", "at", "log_size")


class TrustError(SignerError):
    """A pin is malformed or names no key that can be found."""


def raw_hex(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 over the raw public key, 64 hex digits (its first 16 are the key id)."""
    return hashlib.sha256(bytes.fromhex(raw_hex(public_key))).hexdigest()


def shown(fp: str) -> str:
    """A fingerprint in groups of four, easier to read aloud and compare."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def normalise_pin(text: str) -> str:
    """The 64 lower-case hex digits of a pin given with or without spaces or colons."""
    digits = "".join(c for c in text.lower() if c not in " :-")
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise TrustError(f"--pin must be the 64 hex digits 'keys init' showed, not {text!r}")
    return digits


def chain_path(keys_dir: str | Path) -> Path:
    return Path(keys_dir) / CHAIN_NAME


def read_chain(keys_dir: str | Path) -> list[dict[str, Any]]:
    path = chain_path(keys_dir)
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            value = json.loads(line) if line.strip() else None
        except ValueError:
            raise TrustError(f"{path.name} line {number} is not JSON") from None
        if isinstance(value, dict):
            entries.append(value)
    return entries


def _message(entry: Mapping[str, Any]) -> bytes:
    body = {k: entry.get(k) for k in ENTRY_FIELDS}
    return CHAIN_CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _append(keys_dir: str | Path, entry: Mapping[str, Any]) -> None:
    path = chain_path(keys_dir)
    old = path.read_bytes() if path.exists() else b""
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_private(path, old + line, 0o600)  # public keys, but the keys folder stays private


def record_first_key(keys_dir: str | Path, public_key: Ed25519PublicKey, at: str) -> None:
    """Start the chain with the key ``keys init`` made (unsigned: the pin vouches for it)."""
    if chain_path(keys_dir).exists():
        return
    fp = fingerprint(public_key)
    entry = {"key": raw_hex(public_key), "fingerprint": fp, "previous": None, "at": at,
             "log_size": 0}  # fmt: skip
    _append(keys_dir, entry)


def record_rotation(
    keys_dir: str | Path, old: AuditSigner, new_key: Ed25519PublicKey, at: str, log_size: int
) -> dict[str, Any]:
    """Append the entry naming ``new_key``, signed by the key it replaces."""
    entry: dict[str, Any] = {
        "key": raw_hex(new_key),
        "fingerprint": fingerprint(new_key),
        "previous": fingerprint(old.public_key),
        "at": at,
        "log_size": log_size,
    }
    entry["signature"] = old.sign(_message(entry))
    _append(keys_dir, entry)
    return entry


@dataclass
class Trust:
    """The keys a verification trusts, how they were chosen, and what the chain demands."""

    keys: dict[str, Ed25519PublicKey]
    mode: str
    """``pinned`` (a fingerprint and the chain from it), ``given`` (--pubkey) or ``unpinned``."""
    min_size: int = 0
    """The log's size at the last trusted rotation: a shorter log was cut."""
    notes: list[str] = field(default_factory=list)


def trust_from_pin(
    pin: str, candidates: Iterable[Ed25519PublicKey], chain: list[dict[str, Any]]
) -> Trust:
    """The pinned key and every key the chain hands on from it, each signed by its predecessor."""
    wanted = normalise_pin(pin)
    known = {fingerprint(k): k for k in candidates}
    for entry in chain:
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(entry.get("key"))))
        except ValueError:
            continue
        known.setdefault(fingerprint(key), key)
    if wanted not in known:
        raise TrustError(f"no public key with fingerprint {shown(wanted)} on disk or in the chain")
    trusted = {wanted: known[wanted]}
    trust = Trust({}, "pinned")
    for entry in chain:  # entries are in rotation order: each builds on the ones before
        previous = trusted.get(str(entry.get("previous")))
        new_fp = str(entry.get("fingerprint"))
        if previous is None or new_fp not in known or new_fp in trusted:
            continue
        if fingerprint(known[new_fp]) != new_fp or not verify_signature(
            previous, _message(entry), str(entry.get("signature", ""))
        ):
            trust.notes.append(
                f"key chain entry for {new_fp[:16]} is not signed by its predecessor"
            )
            continue
        trusted[new_fp] = known[new_fp]
        trust.min_size = max(trust.min_size, int(entry.get("log_size") or 0))
    trust.keys = {key_id(k): k for k in trusted.values()}
    return trust
