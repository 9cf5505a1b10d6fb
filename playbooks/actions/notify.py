"""The ``notify`` action: a message to a webhook target named in ``config.webhooks``.

Kinds: ``json`` (a generic JSON body), ``dingtalk`` (custom robot; signed with
HMAC-SHA256 of ``timestamp\\nsecret``, base64, sent as url-encoded ``timestamp``
and ``sign`` query parameters), ``wecom`` (group robot, markdown message),
``feishu`` (custom bot; the key ``timestamp\\nsecret`` signs an empty message,
base64 ``sign`` and ``timestamp`` in the body) and ``slack`` (``{"text"}``,
also what Mattermost and Rocket.Chat take). Drill runs go to
``config.playbooks.drill_target`` (as ``json``) or are suppressed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import aiohttp

from watchfloor.playbooks.actions.http import ActionResult, RetryPolicy, deliver

KINDS = frozenset({"json", "dingtalk", "wecom", "feishu", "slack"})
DEFAULT_TARGET = "default"
"""A webhook named ``default`` receives messages for targets that are not configured."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    kind: str
    url: str
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class Mention:
    """A person to @mention, with the ids each robot knows them by (any may be empty)."""

    name: str
    mobile: str = ""
    dingtalk: str = ""
    wecom: str = ""
    feishu: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    text: str
    context: dict[str, Any]
    """Run, step, incident, severity, drill, purpose (``action`` or ``escalation``)."""
    mentions: tuple[Mention, ...] = field(default=())
    """People the robot should @mention (paging); a group message when empty."""


def targets_from_config(webhooks: Iterable[Any]) -> dict[str, Target]:
    """``config.webhooks`` as :class:`Target` by name (secrets unwrapped here only)."""
    out = {}
    for hook in webhooks:
        secret = hook.secret.value if hook.secret is not None else None
        out[hook.name] = Target(hook.name, hook.kind, hook.url.value, secret)
    return out


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def build_request(target: Target, message: Message, now: float) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of ``message`` for ``target``'s kind."""
    builder = _BUILDERS.get(target.kind)
    if builder is None:
        raise ValueError(f"unknown webhook kind {target.kind!r}")
    return builder(target, message, now)


def _json(target: Target, m: Message, now: float) -> tuple[str, dict[str, Any]]:
    body = {"title": m.title, "text": m.text, "at": now, **m.context}
    if m.mentions:
        body["mentions"] = [p.name for p in m.mentions]
    return target.url, body


def _dingtalk(target: Target, m: Message, now: float) -> tuple[str, dict[str, Any]]:
    url = target.url
    if target.secret:
        ts = int(now * 1000)
        sign = quote_plus(dingtalk_sign(target.secret, ts))
        url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={sign}"
    mobiles = [p.mobile for p in m.mentions if p.mobile]
    user_ids = [p.dingtalk for p in m.mentions if p.dingtalk]
    # DingTalk highlights a mention only when the text also carries "@mobile" / "@userId".
    tags = " ".join(f"@{who}" for who in (*mobiles, *user_ids))
    text = f"### {m.title}\n\n{m.text}" + (f"\n\n{tags}" if tags else "")
    body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": m.title, "text": text}}
    if m.mentions:
        body["at"] = {"atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": False}
    return url, body


def _wecom(target: Target, m: Message, now: float) -> tuple[str, dict[str, Any]]:
    if not m.mentions:
        content = f"**{m.title}**\n{m.text}"
        return target.url, {"msgtype": "markdown", "markdown": {"content": content}}
    # Only WeCom's text messages take mention lists (markdown ignores them).
    text: dict[str, Any] = {
        "content": f"{m.title}\n{m.text}",
        "mentioned_list": [p.wecom for p in m.mentions if p.wecom],
        "mentioned_mobile_list": [p.mobile for p in m.mentions if p.mobile],
    }
    return target.url, {"msgtype": "text", "text": text}


def _feishu(target: Target, m: Message, now: float) -> tuple[str, dict[str, Any]]:
    ats = "".join(f'<at user_id="{p.feishu}">{p.name}</at>' for p in m.mentions if p.feishu)
    text = f"{m.title}\n{m.text}" + (f"\n{ats}" if ats else "")
    body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
    if target.secret:
        ts = int(now)
        body = {"timestamp": str(ts), "sign": feishu_sign(target.secret, ts), **body}
    return target.url, body


def _slack(target: Target, m: Message, now: float) -> tuple[str, dict[str, Any]]:
    return target.url, {"text": f"*{m.title}*\n{m.text}"}


_BUILDERS = {
    "json": _json,
    "dingtalk": _dingtalk,
    "wecom": _wecom,
    "feishu": _feishu,
    "slack": _slack,
}


def check_answer(kind: str, status: int, text: str) -> tuple[bool, str]:
    """Robots answer 200 with an error code in the body: read it."""
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    if kind not in ("dingtalk", "wecom", "feishu"):
        return True, f"HTTP {status}"
    try:
        body = json.loads(text)
    except ValueError:
        return False, f"HTTP {status}, not JSON"
    code = body.get("errcode", body.get("code", body.get("StatusCode", 0)))
    if code not in (0, None):
        return False, f"robot error {code}: {body.get('errmsg') or body.get('msg') or ''}".strip()
    return True, f"HTTP {status}"


class Notifier:
    """Sends messages to named targets; drills to the drill target or nowhere."""

    def __init__(
        self,
        targets: dict[str, Target],
        *,
        drill_target: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Any = time.time,
    ) -> None:
        self.targets = targets
        self.drill_target = drill_target
        self.policy = policy or RetryPolicy()
        self.clock = clock

    def resolve(self, name: str, drill: bool) -> Target | None:
        if drill:
            return Target("drill", "json", self.drill_target) if self.drill_target else None
        return self.targets.get(name) or self.targets.get(DEFAULT_TARGET)

    async def send(
        self,
        session: aiohttp.ClientSession,
        name: str,
        message: Message,
        *,
        key: str,
        drill: bool,
    ) -> ActionResult:
        target = self.resolve(name, drill)
        if target is None and drill:
            return ActionResult(True, f"drill: message to {name} suppressed", 0, suppressed=True)
        if target is None:
            return ActionResult(False, f"no webhook named {name!r} (nor {DEFAULT_TARGET!r})")
        url, body = build_request(target, message, self.clock())
        result = await deliver(
            session,
            "POST",
            url,
            body=body,
            key=key,
            policy=self.policy,
            check=lambda status, text: check_answer(target.kind, status, text),
        )
        result.extra["target"] = name if not drill else f"{name} (drill target)"
        return result
