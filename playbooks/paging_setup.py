"""Builds the pager from the config: routes, the escalation policy, the ack key, the roster."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

from watchfloor.core.config import Config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.ack_links import load_ack_key
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.notify import DEFAULT_TARGET
from watchfloor.playbooks.paging import DutyLookup, Pager
from watchfloor.playbooks.paging_routes import parse_routes
from watchfloor.playbooks.roster import Person, Roster, on_duty
from watchfloor.playbooks.roster_store import load_roster

DutyRosterLoader = Callable[[], Awaitable[Roster | None]]


def ack_base_url(config: Config) -> str:
    """Where acknowledge links point: ``[paging] base_url`` or the API's own address."""
    return config.paging.base_url or f"http://{config.api.host}:{config.api.port}"


def roster_duty(load: DutyRosterLoader) -> DutyLookup:
    """A duty lookup over the roster ``load()`` returns (read again at every page, so an
    import or override in force takes effect on the next page)."""

    async def lookup(at: float) -> Mapping[str, Sequence[Person]]:
        roster = await load()
        if roster is None:
            return {}
        return on_duty(roster, datetime.fromtimestamp(at, UTC))

    return lookup


def stored_roster_duty(redis: aioredis.Redis) -> DutyLookup:
    """The duty lookup over the roster ``watchfloor roster import`` stored in Redis."""

    async def load() -> Roster | None:
        return await load_roster(redis)

    return roster_duty(load)


def pager_wanted(config: Config) -> bool:
    """Whether ``config`` asks for a pager: paging on, and a route or a ``default`` webhook
    (with neither, the default route would reach nobody)."""
    has_default = any(hook.name == DEFAULT_TARGET for hook in config.webhooks)
    return config.paging.enabled and bool(config.paging.routes or has_default)


def escalation_levels(config: Config) -> list[tuple[float, str]]:
    """``[[paging.escalation]]`` as the pager takes it: (seconds after opening, role)."""
    return [(level.after_s, level.role) for level in config.paging.escalation]


def build_pager(
    redis: aioredis.Redis,
    config: Config,
    incidents: IncidentStore,
    actions: ActionExecutor,
    duty: DutyLookup,
) -> Pager | None:
    """The pager of ``config.paging`` sending through the runner's executor (one session,
    one retry policy, the same webhooks); ``None`` when paging is off, or when no route is
    configured and no webhook is named ``default`` (the default route would reach nobody)."""
    if not pager_wanted(config):
        return None
    paging = config.paging
    return Pager(
        redis,
        incidents,
        actions.notifier,
        actions.session,
        routes=parse_routes(paging.routes),
        levels=escalation_levels(config),
        duty=duty,
        ack_key=load_ack_key(config.data_dir),
        base_url=ack_base_url(config),
        ack_ttl_s=paging.ack_ttl_s,
        poll_s=paging.poll_s,
        lang=config.console.lang,
    )
