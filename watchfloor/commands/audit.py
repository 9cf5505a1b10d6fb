"""`watchfloor audit`: verify, tail and export the audit log.

``verify`` recomputes the chain over the mirrored files (default), an exported
bundle (``--file``) or what Redis holds (``--redis``), and checks every
checkpoint against the keys it trusts: with ``--pin FINGERPRINT`` the key
``keys init`` showed and the keys its rotation chain hands on
(``security.audit_trust``); with ``--pubkey`` exactly those files; otherwise,
*unpinned*, the public keys on the same disk, and it says so. Over the files it
also checks the signing schedule (a deleted checkpoint is a gap), and with
``--witness FILE`` that the log matches every checkpoint a witness received.
``tail`` shows the last records (escaped: see ``core.printable``); ``export``
writes a bundle a security officer can verify offline with nothing but the
public key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core.config import Config
from watchfloor.core.printable import printable
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.errors import CommandError
from watchfloor.security.audit_chain import (
    BUNDLE_FORMAT,
    VerifyResult,
    make_bundle,
    verify_bundle,
    verify_records,
)
from watchfloor.security.audit_files import (
    AuditFileError,
    read_checkpoints,
    read_records,
    write_synced,
)
from watchfloor.security.audit_schedule import Schedule
from watchfloor.security.audit_trust import Trust, read_chain, trust_from_pin
from watchfloor.security.audit_witness import WitnessError, read_witness
from watchfloor.security.signer import (
    SignerError,
    default_public_keys,
    load_public_key,
    pinned_keys,
)

CHUNK = 5000


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="verify, tail and export the audit log")
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = commands.add_parser("verify", help="recompute the chain and check every checkpoint")
    add_config_options(verify)
    verify.add_argument("--file", help="an exported bundle or an audit directory")
    verify.add_argument(
        "--pubkey",
        action="append",
        help="pinned public key PEM (repeatable; default DATA_DIR/keys/audit-signing.pub.pem)",
    )
    verify.add_argument(
        "--pin",
        help="fingerprint of the signing key ('keys init' showed it): trust only it and its "
        "signed successors",
    )
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        help="a witness's checkpoint file: the log must match every checkpoint in it (repeatable)",
    )
    verify.add_argument(
        "--schedule-grace",
        type=float,
        default=10.0,
        help="seconds allowed past security.checkpoint_interval_s before a checkpoint counts "
        "as missing (default 10)",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=run_verify)

    tail = commands.add_parser("tail", help="show the last records")
    add_config_options(tail)
    tail.add_argument("-n", type=int, default=20, help="how many records (default 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep showing new records")
    tail.add_argument("--json", action="store_true", help="one JSON record a line")
    tail.set_defaults(func=run_tail)

    repair = commands.add_parser(
        "repair", help="rebuild a forked Redis chain from the signed files (audited)"
    )
    add_config_options(repair)
    repair.add_argument("--actor", default="security-officer", help="who repairs (audited)")
    repair.set_defaults(func=run_repair)

    export = commands.add_parser("export", help="write an offline-verifiable bundle")
    add_config_options(export)
    export.add_argument("--since", required=True, help="first seq, or a UTC time (RFC 3339)")
    export.add_argument("--until", help="last seq, or a UTC time (default: the last record)")
    export.add_argument("--out", required=True, help="bundle file to write")
    export.set_defaults(func=run_export)


def _error(message: str) -> Exception:
    return CommandError(message)


# Sources ------------------------------------------------------------------------


def _audit_dir(config: Config) -> Path:
    return config.path("audit")


def _load(args: argparse.Namespace, config: Config) -> tuple[Iterable[dict], list[dict]]:
    """Records (streamed from the files) and checkpoints, from Redis with ``--redis``."""
    if getattr(args, "redis", None):
        return asyncio.run(_load_redis(args.redis))
    directory = Path(args.file) if getattr(args, "file", None) else _audit_dir(config)
    if not directory.is_dir():
        raise _error(f"no audit directory at {directory}")
    return _file_records(directory), _file_checkpoints(directory)


def _file_records(directory: Path) -> Iterator[dict]:
    try:
        yield from read_records(directory)
    except AuditFileError as exc:
        raise _error(f"cannot read the audit files: {exc}") from None


def _file_checkpoints(directory: Path) -> list[dict]:
    try:
        return read_checkpoints(directory)
    except AuditFileError as exc:
        raise _error(f"cannot read the audit checkpoints: {exc}") from None


async def _load_redis(url: str) -> tuple[list[dict], list[dict]]:
    import redis.exceptions

    from watchfloor.security.audit import AuditLog

    client = redis_connect(url, socket_connect_timeout=3)
    try:
        log = AuditLog(client)
        records: list[dict] = []
        async for batch in log.scan(CHUNK):
            records.extend(batch)
        return records, await log.checkpoints()
    except (redis.exceptions.ConnectionError, OSError) as exc:
        raise _error(f"Redis at {url} is unreachable: {exc}") from None
    finally:
        await client.aclose()


async def _verify_redis(url: str, keys: list[Any]) -> VerifyResult:
    import redis.exceptions

    from watchfloor.security.audit import AuditLog

    client = redis_connect(url, socket_connect_timeout=3)
    try:
        return await AuditLog(client).verify(keys)
    except (redis.exceptions.ConnectionError, OSError) as exc:
        raise _error(f"Redis at {url} is unreachable: {exc}") from None
    finally:
        await client.aclose()


def _trust(args: argparse.Namespace, config: Config) -> Trust:
    """The keys this verification trusts, and whether they were pinned."""
    keys_dir = config.path("keys")
    try:
        given = [load_public_key(p) for p in args.pubkey or []]
        if args.pin:
            disk = list(default_public_keys(keys_dir).values()) if keys_dir.is_dir() else []
            return trust_from_pin(args.pin, [*given, *disk], read_chain(keys_dir))
        if given:
            return Trust(pinned_keys(given), "given")
        keys = default_public_keys(keys_dir)
    except SignerError as exc:
        raise _error(str(exc)) from None
    if not keys:
        raise _error(f"no public key in {keys_dir}: pass --pin or --pubkey")
    return Trust(keys, "unpinned")


def _witnessed(args: argparse.Namespace) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in args.witness:
        try:
            found.extend(read_witness(path))
        except WitnessError as exc:
            raise _error(str(exc)) from None
    return found


# verify -------------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    trust = _trust(args, config)
    witnessed = _witnessed(args)
    keys = trust.keys
    bundle = _read_bundle(Path(args.file)) if args.file and Path(args.file).is_file() else None
    if bundle is not None:
        result = verify_bundle(bundle, keys)
    elif args.redis:
        result = asyncio.run(_verify_redis(args.redis, list(keys.values())))
    else:
        records, checkpoints = _load(args, config)
        every, interval = config.security.checkpoint_every, config.security.checkpoint_interval_s
        schedule = Schedule(every, interval, args.schedule_grace)
        result = verify_records(records, checkpoints, keys, schedule=schedule, witnessed=witnessed)
    result = _against_anchors(result, trust, bool(witnessed))
    _report(result, args.json, trust, len(witnessed))
    return 0 if result.ok else 1


def _against_anchors(result: VerifyResult, trust: Trust, witnessed: bool) -> VerifyResult:
    """With a pin or a witness, an empty, unsigned or cut log is a failure, not a pass."""
    if not result.ok or (trust.mode != "pinned" and not witnessed):
        return result
    if result.last_checkpoint_seq == 0:
        why = "nothing here is signed by a trusted key: an empty or unsigned log proves nothing"
        return replace(result, ok=False, first_bad_seq=result.verified_upto + 1, reason=why)
    if result.verified_upto < trust.min_size:
        why = (
            f"log shortened: it held {trust.min_size} records when the signing key was rotated, "
            f"now it ends at seq {result.verified_upto}"
        )
        return replace(result, ok=False, first_bad_seq=result.verified_upto + 1, reason=why)
    return result


def _read_bundle(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise _error(f"{path} is not a readable bundle: {exc}") from None
    if not isinstance(value, dict) or value.get("format") != BUNDLE_FORMAT:
        raise _error(f"{path} is not a {BUNDLE_FORMAT} bundle")
    return value


def _trust_line(trust: Trust, witnesses: int) -> str:
    ids = ", ".join(sorted(trust.keys))
    if trust.mode == "pinned":
        line = f"trust: pinned key(s) {ids}"
    elif trust.mode == "given":
        line = f"trust: the --pubkey key(s) {ids}"
    else:
        line = (
            f"trust: UNPINNED, the public keys found on this disk ({ids}); a rewrite re-signed "
            "with a key dropped there would pass: pass --pin FINGERPRINT ('keys init' showed it)"
        )
    return line + (f"; {witnesses} witnessed checkpoint(s)" if witnesses else "")


def _report(result: VerifyResult, as_json: bool, trust: Trust, witnesses: int = 0) -> None:
    if as_json:
        body = {**result.to_dict(), "trust": trust.mode, "witnessed": witnesses}
        print(json.dumps(body, ensure_ascii=True))
        return
    print(_trust_line(trust, witnesses))
    for note in trust.notes:
        print(f"note: {note}")
    if not result.ok:
        print(f"FAILED at record {result.first_bad_seq}: {printable(result.reason)}")
        print(
            f"verified up to record {result.verified_upto}, "
            f"last good checkpoint at seq {result.last_checkpoint_seq}"
        )
        return
    print(
        f"verified {result.records} records, {result.checkpoints} checkpoints, "
        f"last checkpoint at seq {result.last_checkpoint_seq}"
    )
    if result.from_seq > 1:
        print(f"note: verified from seq {result.from_seq}; earlier records are not in this check")
    if result.last_checkpoint_seq < result.verified_upto:
        print(
            f"note: records {result.last_checkpoint_seq + 1}..{result.verified_upto} are "
            "chained but not yet covered by a signed checkpoint"
        )


# tail ---------------------------------------------------------------------------


def run_tail(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    url = args.redis or config.redis.url
    if url:
        asyncio.run(_tail_redis(url, args))
    else:
        _tail_files(_audit_dir(config), args)
    return 0


def _show(record: dict[str, Any], as_json: bool) -> None:
    """One record a line; every field escaped, since callers choose what ends up in them."""
    if as_json:  # ASCII-only JSON: no raw control or bidi character reaches the terminal
        print(json.dumps(record, ensure_ascii=True, sort_keys=True), flush=True)
        return
    details = json.dumps(record.get("details") or {}, ensure_ascii=False, sort_keys=True)
    fields = [record.get(k, "") for k in ("seq", "at", "actor", "role", "action", "target")]
    seq, at, actor, role, action, target = (printable(f) for f in fields)
    print(
        f"{seq:>7}  {at}  {actor} ({role})  {action}  {target}  "
        f"{printable(record.get('outcome', ''))}  {printable(details)}",
        flush=True,
    )


async def _tail_redis(url: str, args: argparse.Namespace) -> None:

    from watchfloor.security.audit import AuditLog

    client = redis_connect(url, socket_connect_timeout=3)
    try:
        log = AuditLog(client)
        seq, _ = await log.head()
        after = max(0, seq - args.n)
        while True:
            for record in await log.read(after, CHUNK):
                _show(record, args.json)
                after = record["seq"]
            if not args.follow:
                return
            await asyncio.sleep(1.0)
    finally:
        await client.aclose()


def _tail_files(directory: Path, args: argparse.Namespace) -> None:
    if not directory.is_dir():
        raise _error(f"no audit directory at {directory}")
    records = list(read_records(directory))
    for record in records[-args.n :] if args.n > 0 else []:
        _show(record, args.json)
    after = records[-1]["seq"] if records else 0
    while args.follow:
        time.sleep(1.0)
        for record in _records_after(directory, after):
            _show(record, args.json)
            after = record["seq"]


def _records_after(directory: Path, after: int) -> Iterator[dict[str, Any]]:
    return (r for r in read_records(directory) if r["seq"] > after)


# repair -------------------------------------------------------------------------


def run_repair(args: argparse.Namespace) -> int:
    """Files win over Redis (see ``security.audit_repair``); Redis's differing records are kept."""
    from watchfloor.commands.token import with_redis
    from watchfloor.security.audit import open_audit
    from watchfloor.security.audit_chain import AuditError
    from watchfloor.security.audit_repair import repair, summary

    async def work(config: Config, client: Any) -> int:
        log = open_audit(config, client)
        try:
            report = await repair(log, _audit_dir(config), args.actor, "security_officer")
        except (AuditError, AuditFileError) as exc:
            raise _error(f"not repaired: {exc}") from None
        finally:
            log.close()
        print(printable(summary(report)))
        return 0

    return with_redis(args, work)


# export -------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    loaded, checkpoints = _load(args, config)
    records = list(loaded)
    if not records:
        raise _error("the audit log is empty")
    check = verify_records(records, checkpoints, _pinned_for_export(config))
    if not check.ok:
        raise _error(
            f"refusing to export: the log fails verification at record "
            f"{check.first_bad_seq}: {check.reason}"
        )
    since = _bound(args.since, records, first=True)
    until = _bound(args.until, records, first=False) if args.until else records[-1]["seq"]
    if since > until:
        raise _error(f"nothing to export: --since is after --until (seq {since} > {until})")
    try:
        bundle = make_bundle(records, checkpoints, since, until)
    except ValueError as exc:
        raise _error(f"{exc} (the monitor signs one at least every interval; retry)") from None
    write_synced(Path(args.out), json.dumps(bundle, ensure_ascii=False).encode(), append=False)
    print(
        f"exported records {since}..{until} ({len(bundle['records'])}) with "
        f"{len(bundle['checkpoints'])} checkpoints to {args.out}"
    )
    return 0


def _pinned_for_export(config: Config) -> dict[str, Any]:
    try:
        keys = default_public_keys(config.path("keys"))
    except SignerError as exc:
        raise _error(str(exc)) from None
    if not keys:
        raise _error(f"no audit public key in {config.path('keys')}")
    return keys


def _bound(text: str, records: list[dict[str, Any]], *, first: bool) -> int:
    """A seq from ``text``: a number, or the first/last record at/before a UTC time."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _error(f"{text!r} is neither a seq nor an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise _error(f"{text!r} has no time zone: add Z for UTC")

    def at(record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["at"].replace("Z", "+00:00"))

    if first:
        return next((r["seq"] for r in records if at(r) >= moment), records[-1]["seq"] + 1)
    return next((r["seq"] for r in reversed(records) if at(r) <= moment), 0)
