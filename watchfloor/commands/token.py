"""`watchfloor token`: create, list and revoke API tokens.

Works against ``--redis URL``, else the Redis of the stack running on
``--data-dir``, else that directory's embedded Redis started for the duration
of the command. A created
token is printed once, on stdout alone, so ``TOKEN=$(watchfloor token create
...)`` works; everything else goes to stderr. Creation and revocation are
audited (actor ``cli:<user>``) when the audit log module is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core.config import Config
from watchfloor.core.redis_client import RedisSecretError
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import RedisServerError, redis_url_for
from watchfloor.errors import CommandError
from watchfloor.security.roles import ROLES
from watchfloor.security.tokens import TokenError, TokenStore, load_seal, parse_duration

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser("token", help="create, list and revoke API tokens")
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a token (printed once)")
    create.add_argument("--name", required=True, help="unique name (e.g. acd-prod, duty-lee)")
    create.add_argument("--role", required=True, choices=sorted(ROLES))
    create.add_argument("--ttl", help="lifetime such as 90m, 8h, 30d (default: no expiry)")
    create.add_argument("--json", action="store_true", help="print the token and record as JSON")
    add_config_options(create)
    create.set_defaults(func=run_create)

    listing = actions.add_parser("list", help="list tokens (short ids, never the tokens)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    add_config_options(listing)
    listing.set_defaults(func=run_list)

    revoke = actions.add_parser("revoke", help="revoke the live token called NAME")
    revoke.add_argument("name")
    add_config_options(revoke)
    revoke.set_defaults(func=run_revoke)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def with_redis(
    args: argparse.Namespace, work: Callable[[Config, aioredis.Redis], Awaitable[int]]
) -> int:
    """Run ``work`` against the configured Redis: the running stack's, or else the
    data dir's embedded one started for the duration."""
    config = config_from_args(args)

    async def main(url: str) -> int:
        client = redis_connect(url, cluster=config.redis.cluster, socket_connect_timeout=5)
        try:
            return await work(config, client)
        finally:
            await client.aclose()

    try:
        with redis_url_for(
            config.redis.url,
            config.data_dir,
            binary=config.redis.embedded_binary,
            fsync=config.redis.appendfsync,
        ) as url:
            return asyncio.run(main(url))
    except (RedisServerError, RedisSecretError) as exc:
        raise CommandError(str(exc)) from None


def with_store(
    args: argparse.Namespace,
    work: Callable[[Config, aioredis.Redis, TokenStore], Awaitable[int]],
) -> int:
    return with_redis(
        args,
        lambda config, client: work(
            config, client, TokenStore(client, seal=load_seal(config.data_dir))
        ),
    )


async def audit_action(
    config: Config, client: aioredis.Redis, action: str, target: str, details: dict[str, Any]
) -> None:
    """Append one record to the audit log, if the audit module is installed."""
    if importlib.util.find_spec("watchfloor.security.audit") is None:
        logger.warning("audit log not installed: %s %s not audited", action, target)
        return
    from watchfloor.security.audit import open_audit

    audit = open_audit(config, client)
    try:
        await audit.append(cli_actor(), "admin", action, target, details=details)
        await audit.mirror()
    finally:
        audit.close()


def run_create(args: argparse.Namespace) -> int:
    try:
        ttl_s = parse_duration(args.ttl) if args.ttl else None
    except TokenError as exc:
        raise CommandError(str(exc)) from None

    async def work(config: Config, client: aioredis.Redis, store: TokenStore) -> int:
        try:
            token, record = await store.create(args.name, args.role, ttl_s)
        except TokenError as exc:
            raise CommandError(str(exc)) from None
        details = {"role": args.role, "ttl_s": ttl_s, "id": record["id"]}
        await audit_action(config, client, "token.create", args.name, details)
        if args.json:
            print(json.dumps({"token": token, **record}))
        else:
            print(token)
            expiry = _when(record["expires"]) if record["expires"] else "never"
            print(
                f"created token {args.name!r} (role {args.role}, id {record['id']}, "
                f"expires {expiry}); it is shown only once",
                file=sys.stderr,
            )
        return 0

    return with_store(args, work)


def run_list(args: argparse.Namespace) -> int:
    async def work(config: Config, client: aioredis.Redis, store: TokenStore) -> int:
        rows = await store.list()
        if args.json:
            print(json.dumps(rows))
            return 0
        print(f"{'ID':10}  {'NAME':24}  {'ROLE':16}  {'STATE':8}  {'CREATED':17}  EXPIRES")
        for r in rows:
            expires = _when(r["expires"]) if r["expires"] else "never"
            print(
                f"{r['id']:10}  {r['name']:24}  {r['role']:16}  {r['state']:8}  "
                f"{_when(r['created']):17}  {expires}"
            )
        return 0

    return with_store(args, work)


def run_revoke(args: argparse.Namespace) -> int:
    async def work(config: Config, client: aioredis.Redis, store: TokenStore) -> int:
        if not await store.revoke(args.name):
            raise CommandError(f"no live token named {args.name!r}")
        await audit_action(config, client, "token.revoke", args.name, {})
        print(f"revoked token {args.name!r}", file=sys.stderr)
        return 0

    return with_store(args, work)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) + "Z"
