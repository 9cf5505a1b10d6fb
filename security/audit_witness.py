"""Witnesses: every signed audit checkpoint also goes somewhere the log's host cannot rewrite.

A rewrite that re-signs the log (the signing key stolen) or deletes the local
checkpoints is only caught by comparing with checkpoints kept elsewhere. The
monitor hands each new checkpoint to the configured witnesses, in order:

* a file (``security.audit_witness_file``): one checkpoint a line, canonical
  JSON, appended and fsynced; best on another host's mount or an append-only
  (``chattr +a``) file;
* a webhook (``security.audit_witness_url``): ``json`` posts
  ``{"type": "watchfloor.audit.checkpoint", "checkpoint": {...}}``; the chat
  robots (``dingtalk``, ``wecom``, ``feishu``, ``slack``) post a text message
  whose last line is the checkpoint's JSON, so the security officer's group
  keeps them and the lines can be pasted into a witness file.

Progress per witness is kept in ``keys.AUDIT_WITNESSED`` (resumed after a
restart; a witness that fails is retried every pass and reported as a problem).
``audit verify --witness FILE`` reads such a file (:func:`read_witness`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.config import Config
from watchfloor.security.audit_chain import canonical
from watchfloor.security.audit_files import write_synced

logger = logging.getLogger(__name__)

CHAT_KINDS: Final = ("dingtalk", "wecom", "feishu", "slack")
TIMEOUT_S: Final = 5.0


class WitnessError(Exception):
    """A witness could not be written to or read."""


def read_witness(path: str | Path) -> list[dict[str, Any]]:
    """The checkpoints of a witness file (or of chat messages pasted into one).

    Every line that holds a JSON object with a ``size`` counts; other lines (a
    chat message's heading) are skipped, so a copy of the chat works as well.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WitnessError(f"cannot read witness {path}: {exc}") from None
    found = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            value = json.loads(line[start:])
        except ValueError:
            continue
        checkpoint = value.get("checkpoint", value) if isinstance(value, dict) else None
        if isinstance(checkpoint, dict) and "size" in checkpoint:
            found.append(checkpoint)
    return found


def chat_body(kind: str, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    line = canonical(dict(checkpoint)).decode("utf-8")
    text = f"Watchfloor audit checkpoint (records 1..{checkpoint['size']})\n{line}"
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": text}}
    if kind == "slack":
        return {"text": text}
    return {"msgtype": "text", "text": {"content": text}}  # dingtalk, wecom


@dataclass(frozen=True)
class Witness:
    name: str
    deliver: Callable[[Mapping[str, Any]], Awaitable[None]]


def file_witness(path: str | Path) -> Witness:
    target = Path(path)

    async def deliver(checkpoint: Mapping[str, Any]) -> None:
        try:
            write_synced(target, canonical(dict(checkpoint)) + b"\n")
        except OSError as exc:
            raise WitnessError(f"witness file {target}: {exc}") from None

    return Witness("file", deliver)


def url_witness(url: str, kind: str) -> Witness:
    async def deliver(checkpoint: Mapping[str, Any]) -> None:
        body = (
            chat_body(kind, checkpoint)
            if kind in CHAT_KINDS
            else {"type": "watchfloor.audit.checkpoint", "checkpoint": dict(checkpoint)}
        )
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=body) as response,
            ):
                if response.status >= 300:
                    raise WitnessError(f"witness webhook answered {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise WitnessError(f"witness webhook unreachable: {type(exc).__name__}") from None

    return Witness(f"webhook:{kind}", deliver)


def witnesses_from(config: Config) -> list[Witness]:
    security = config.security
    found = []
    if security.audit_witness_file:
        found.append(file_witness(security.audit_witness_file))
    if security.audit_witness_url is not None and security.audit_witness_url.value:
        found.append(url_witness(security.audit_witness_url.value, security.audit_witness_kind))
    return found


class WitnessSender:
    """Hands every checkpoint past each witness's progress to it, oldest first."""

    def __init__(self, redis: aioredis.Redis, witnesses: list[Witness]) -> None:
        self.redis = redis
        self.witnesses = witnesses
        self.failing: dict[str, str] = {}
        """Witness name -> why its last delivery failed (cleared when one succeeds)."""

    async def send(self, checkpoints: Callable[[int], Awaitable[list[dict[str, Any]]]]) -> int:
        """Deliver what each witness has not seen; return checkpoints delivered."""
        sent = 0
        for witness in self.witnesses:
            done = int(await self.redis.hget(keys.AUDIT_WITNESSED, witness.name) or 0)
            try:
                for checkpoint in await checkpoints(done):
                    await witness.deliver(checkpoint)
                    done = int(checkpoint["size"])
                    await self.redis.hset(keys.AUDIT_WITNESSED, witness.name, done)
                    sent += 1
            except WitnessError as exc:
                if self.failing.get(witness.name) != str(exc):
                    logger.warning("audit witness failed witness=%s error=%s", witness.name, exc)
                self.failing[witness.name] = str(exc)
                continue
            self.failing.pop(witness.name, None)
        return sent
