"""First start of a data directory: its folders, keys and the stack's own tokens.

``watchfloor up`` calls :func:`prepare_data_dir` before anything runs and
:func:`ensure_token` once Redis is up. Both are idempotent: a second ``up``
finds everything in place and changes nothing. Tokens are shown once and kept
only in ``DATA_DIR/tokens/<name>.token`` (0600) for the local console and
simulator; Redis holds only their hashes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from watchfloor.core.config import Config
from watchfloor.security.key_setup import init_keys
from watchfloor.security.keys import write_private
from watchfloor.security.tokens import SEAL_KEY_NAME, TokenStore, load_seal

SUBDIRS = ("redis", "keys", "audit", "logs", "spool", "tokens")

CONFIG_TEMPLATE = """\
# Watchfloor configuration (every key: `watchfloor config show`; WATCHFLOOR_* variables
# override it). Uncomment what you need. `watchfloor reload` applies [[webhooks]], [playbooks]
# and the rules file to the running stack; every other setting is read when `watchfloor up` starts.

# Where playbook notifications go. Steps name a target (duty-group, security, management,
# pr-legal...); `default` takes every name that has no target of its own. Until one exists,
# notify steps show "failed: no webhook named ..." on the run.
# [[webhooks]]
# name = "default"
# kind = "dingtalk"            # json, dingtalk, wecom, feishu or slack
# url = "https://oapi.dingtalk.com/robot/send?access_token=..."
# secret = "SEC..."            # DingTalk / Feishu signing secret

# Health probes the collector runs (health events for the outage detector).
# [[probes]]
# name = "order-api"
# kind = "http"
# target = "http://127.0.0.1:8080/health"
# interval_s = 10

# Paging people (docs/duty.md): import a roster (`watchfloor roster import roster.toml`);
# with a webhook named "default" every incident pages the on-call person, then the backup,
# then the duty manager until someone acknowledges. Routes send kinds to other channels:
# [paging]
# base_url = "https://watchfloor.example.internal"   # where acknowledge links point
# [[paging.routes]]
# matchers = ["kind=leak"]
# roles = ["security_officer"]
# channels = ["security"]

# [site]
# timezone = "Asia/Shanghai"   # times on screen and in reports

# [monitor]
# rules_file = "/etc/watchfloor/rules.toml"   # overrides of the default rules

# [playbooks]
# drill_target = "http://127.0.0.1:9000/drill"   # where drill notifications go
"""


@dataclass(frozen=True, slots=True)
class TokenFile:
    name: str
    role: str
    path: Path
    token: str
    created: bool


def prepare_data_dir(config: Config) -> list[Path]:
    """Create the data directory layout (0700) and any missing key; return what was created."""
    base = config.data_path
    created: list[Path] = []
    if not base.exists():
        created.append(base)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in SUBDIRS:
        path = base / name
        if not path.exists():
            path.mkdir(mode=0o700)
            created.append(path)
    for path in (base, *(base / name for name in SUBDIRS)):
        # An existing directory (made by hand, or by an older version) is made private
        # too: mkdir's mode only applies to the ones it creates.
        path.chmod(0o700)
    created.extend(init_keys(base))
    if not (base / "keys" / SEAL_KEY_NAME).exists():
        load_seal(base)  # before any service starts, so they all read the same key
        created.append(base / "keys" / SEAL_KEY_NAME)
    config_file = base / "watchfloor.toml"
    if not config_file.exists():
        config_file.write_text(CONFIG_TEMPLATE, encoding="utf-8")
        created.append(config_file)
    return created


def token_path(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / "tokens" / f"{name}.token"


async def ensure_token(
    redis: aioredis.Redis, data_dir: str | Path, name: str, role: str
) -> TokenFile:
    """The token stored for ``name``, or a new one if it is missing or no longer valid."""
    store = TokenStore(redis, seal=load_seal(data_dir))
    path = token_path(data_dir, name)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        principal = await store.verify(token)
        if principal is not None and principal.role == role:
            return TokenFile(name, role, path, token, created=False)
    await store.revoke(name)  # a stale record of that name (Redis kept, file lost)
    token, _ = await store.create(name, role)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, (token + "\n").encode())
    os.chmod(path, 0o600)
    return TokenFile(name, role, path, token, created=True)
