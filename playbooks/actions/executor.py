"""Runs a step's action: ``notify``, ``set_flag``, ``http`` (``wait`` is a runner timer).

One executor per process owns the aiohttp session. Message templates use
``{name}`` fields (``{incident}``, ``{subject}``, ``{run}``, the playbook's
variables...); an unknown field is left as written rather than failing the step.
"""

from __future__ import annotations

import logging
import string
import time
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from watchfloor.playbooks.actions.http import ActionResult, RetryPolicy, call_endpoint
from watchfloor.playbooks.actions.language import localized_values
from watchfloor.playbooks.actions.notify import Message, Notifier, targets_from_config
from watchfloor.playbooks.actions.set_flag import run_set_flag

logger = logging.getLogger(__name__)


class _Keep(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(text: str, values: dict[str, Any]) -> str:
    """``text`` with ``{name}`` fields filled from ``values`` (unknown ones kept)."""
    try:
        return string.Formatter().vformat(text, (), _Keep(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return text


class ActionExecutor:
    """Executes actions for the runner; never raises for a failed delivery."""

    def __init__(
        self,
        redis: aioredis.Redis,
        notifier: Notifier,
        policy: RetryPolicy | None = None,
        lang: str = "en",
    ) -> None:
        self.redis = redis
        self.lang = lang
        """The site's language: notification titles and severities are rendered in it."""
        self.notifier = notifier
        self.policy = policy or notifier.policy
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(
        cls, redis: aioredis.Redis, config: Any, policy: RetryPolicy | None = None
    ) -> ActionExecutor:
        notifier = Notifier(
            targets_from_config(config.webhooks),
            drill_target=config.playbooks.drill_target,
            policy=policy,
        )
        return cls(redis, notifier, policy, lang=config.console.lang)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def notify(
        self,
        target: str,
        title: str,
        text: str,
        *,
        values: dict[str, Any],
        key: str,
        drill: bool,
        purpose: str,
    ) -> ActionResult:
        context = {k: values.get(k) for k in ("run", "step", "incident", "severity", "playbook")}
        context.update(drill=drill, purpose=purpose, key=key)  # machine words, for receivers
        shown = await localized_values(self.redis, values, self.lang)
        message = Message(render(title, shown), render(text, shown), context)
        return await self.notifier.send(self.session(), target, message, key=key, drill=drill)

    async def run(
        self,
        action: dict[str, Any],
        *,
        values: dict[str, Any],
        key: str,
        drill: bool,
        at: float | None = None,
    ) -> ActionResult:
        kind = action.get("type")
        at = time.time() if at is None else at
        if kind == "notify":
            title = action.get("title", "{title}")
            text = action.get("message", "{step_title}: {title}")
            return await self.notify(
                action["target"], title, text, values=values, key=key, drill=drill, purpose="action"
            )
        if kind == "set_flag":
            return await run_set_flag(
                self.redis, action, run_id=values.get("run", ""), drill=drill, at=at
            )
        if kind == "http":
            if drill:
                return ActionResult(True, f"drill: {action['url']} not called", 0, suppressed=True)
            body = {
                "run": values.get("run"),
                "step": values.get("step"),
                "incident": values.get("incident"),
                **action.get("body", {}),
            }
            return await call_endpoint(self.session(), action, body, key=key, policy=self.policy)
        return ActionResult(False, f"unknown action {kind!r}")
