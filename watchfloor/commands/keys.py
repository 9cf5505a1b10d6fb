"""`watchfloor keys`: create, list and rotate the keys of ``DATA_DIR/keys``.

``keys init`` creates what is missing (field keyring, audit signing key, the
signing-secrets folder) and never overwrites; it shows the audit signing key's
fingerprint, which the security officer keeps elsewhere and gives to ``audit
verify --pin``. ``keys rotate-audit`` replaces the audit signing key, the old
key signing the hand-over (``security.audit_trust``). ``keys rotate`` adds a field key
that encrypts from now on (older keys still decrypt) and is audited.
``keys add-secret SOURCE`` creates a producer signing secret (printed once) and
``keys retire-secrets SOURCE`` drops the older ones once producers moved on;
both are audited too. ``keys list`` shows files, modes and key ids, never keys.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis.asyncio as aioredis

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.commands.token import audit_action, with_redis
from watchfloor.core.config import Config
from watchfloor.errors import CommandError
from watchfloor.security.audit_chain import utc_now
from watchfloor.security.audit_trust import fingerprint, record_first_key, record_rotation, shown
from watchfloor.security.crypto import CryptoError, FieldCipher, list_field_keys
from watchfloor.security.key_setup import init_keys
from watchfloor.security.keys import keys_dir, list_key_files
from watchfloor.security.signer import SignerError, load_signer, rotate_signing_key
from watchfloor.security.signing import SignatureError, SigningKeys


def register(sub: Any) -> None:
    parser = sub.add_parser("keys", help="create, list and rotate signing and encryption keys")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    init = actions.add_parser("init", help="create the missing keys (never overwrites)")
    init.add_argument("--data-dir", help="data directory (default ./.watchfloor)")
    init.add_argument("--config", help="config file (default DATA_DIR/watchfloor.toml)")
    init.set_defaults(func=run_init)

    listing = actions.add_parser("list", help="key files, modes and key ids (never the keys)")
    listing.add_argument("--data-dir", help="data directory (default ./.watchfloor)")
    listing.add_argument("--config", help="config file (default DATA_DIR/watchfloor.toml)")
    listing.set_defaults(func=run_list)

    rotate = actions.add_parser("rotate", help="new field-encryption key (audited)")
    add_config_options(rotate)
    rotate.set_defaults(func=run_rotate)

    rotate_audit = actions.add_parser(
        "rotate-audit", help="new audit signing key, handed on by the old one (audited)"
    )
    add_config_options(rotate_audit)
    rotate_audit.set_defaults(func=run_rotate_audit)

    add = actions.add_parser("add-secret", help="new signing secret for a producer (audited)")
    add.add_argument("source", help="the producer's source name (or its token name)")
    add_config_options(add)
    add.set_defaults(func=run_add_secret)

    retire = actions.add_parser("retire-secrets", help="drop a producer's older secrets")
    retire.add_argument("source")
    retire.add_argument("--keep", type=int, default=1, help="newest secrets to keep (default 1)")
    add_config_options(retire)
    retire.set_defaults(func=run_retire_secrets)


def run_init(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    created = init_keys(config.data_dir)
    for path in created:
        print(f"created {path}")
    if not created:
        print(f"all keys present in {keys_dir(config.data_dir)}; nothing overwritten")
    _show_fingerprint(config)
    return 0


def _show_fingerprint(config: Config) -> None:
    """Record the audit key as the chain's first entry and show its fingerprint to keep."""
    try:
        signer = load_signer(keys_dir(config.data_dir))
    except SignerError as exc:
        print(f"audit signing key: {exc}", file=sys.stderr)
        return
    record_first_key(keys_dir(config.data_dir), signer.public_key, utc_now())
    fp = fingerprint(signer.public_key)
    print(f"audit signing key fingerprint: {shown(fp)}")
    print(
        "keep it OUTSIDE this server (the security officer's notes, a password manager); "
        f"verify with: watchfloor audit verify --pin {fp}",
        file=sys.stderr,
    )


def run_rotate_audit(args: argparse.Namespace) -> int:
    async def work(config: Config, client: aioredis.Redis) -> int:
        from watchfloor.security.audit import AuditLog

        directory = keys_dir(config.data_dir)
        try:
            old = load_signer(directory)
            size, _ = await AuditLog(client).head()
            record_first_key(directory, old.public_key, utc_now())
            new = rotate_signing_key(directory)
        except SignerError as exc:
            raise _fail(str(exc)) from None
        record_rotation(directory, old, new.public_key, utc_now(), size)
        details = {"from": old.key_id, "to": new.key_id, "log_size": size}
        await audit_action(config, client, "keys.rotate", "audit-signing", details)
        print(f"audit signing key rotated: {old.key_id} -> {new.key_id}, handed on by the old key")
        print(f"new fingerprint: {shown(fingerprint(new.public_key))}")
        print("restart the monitor so that it signs with the new key", file=sys.stderr)
        return 0

    return with_redis(args, work)


def run_list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    files = list_key_files(config.data_dir)
    if not files:
        print(f"no keys in {keys_dir(config.data_dir)}: run 'watchfloor keys init'")
        return 1
    for f in files:
        warning = "  TOO OPEN: chmod 600" if f.too_open else ""
        print(f"{f.mode:04o}  {f.kind:32}  {f.path}{warning}")
    try:
        for key in list_field_keys(config.data_dir):
            mark = "  (encrypts)" if key["current"] else ""
            print(f"field key {key['id']}{mark}")
    except CryptoError as exc:
        print(f"field keyring: {exc}", file=sys.stderr)
    return 0


def _fail(message: str) -> Exception:
    return CommandError(message)


def run_rotate(args: argparse.Namespace) -> int:
    async def work(config: Config, client: aioredis.Redis) -> int:
        try:
            old = FieldCipher.load(config.data_dir).key_id
            new = FieldCipher.rotate(config.data_dir)
        except CryptoError as exc:
            raise _fail(str(exc)) from None
        await audit_action(config, client, "keys.rotate", "field-keys", {"from": old, "to": new})
        print(f"field key rotated: {new} encrypts from now on, {old} and older still decrypt")
        print("restart the collector so that it encrypts with the new key", file=sys.stderr)
        return 0

    return with_redis(args, work)


def run_add_secret(args: argparse.Namespace) -> int:
    async def work(config: Config, client: aioredis.Redis) -> int:
        try:
            secret = SigningKeys.add(config.data_dir, args.source)
        except SignatureError as exc:
            raise _fail(str(exc)) from None
        count = len(SigningKeys.load(config.data_dir).secrets_for(args.source))
        await audit_action(
            config, client, "keys.rotate", f"signing:{args.source}", {"secrets": count}
        )
        print(secret)
        print(
            f"new signing secret for {args.source!r} ({count} held); shown only once",
            file=sys.stderr,
        )
        return 0

    return with_redis(args, work)


def run_retire_secrets(args: argparse.Namespace) -> int:
    if args.keep < 1:
        raise _fail("--keep must be at least 1 (a source without secrets cannot sign)")

    async def work(config: Config, client: aioredis.Redis) -> int:
        try:
            dropped = SigningKeys.retire(config.data_dir, args.source, keep=args.keep)
        except SignatureError as exc:
            raise _fail(str(exc)) from None
        details = {"retired": dropped, "kept": args.keep}
        await audit_action(config, client, "keys.rotate", f"signing:{args.source}", details)
        print(f"retired {dropped} older secret(s) of {args.source!r}", file=sys.stderr)
        return 0

    return with_redis(args, work)
