"""The pager: incidents page the people on duty until one of them acknowledges.

It follows the changes stream (``wf:changes``) from a cursor kept in Redis, so
every incident write (engine, API, another process) is seen once, in order,
and a restart resumes where it stopped. An incident that opens takes its
routes (:mod:`playbooks.paging_routes`) and pages the roster people of their
roles on their channels, @mentioned, each with an acknowledge link; a severity
rise pages them again; each level of the escalation policy falls due on a
Redis sorted set (``wf:paging:due``) and pages its role (the route's again, the
backup, the duty manager) unless the incident was acknowledged or resolved;
resolving tells the channels. Paging state lives in Redis (``wf:paging:page:*``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import msgspec
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.changes import decode_change
from watchfloor.core.incidents import IncidentNotFound, IncidentStore
from watchfloor.core.vocabulary import severity_rank
from watchfloor.playbooks.ack_links import make_token
from watchfloor.playbooks.actions.notify import Notifier
from watchfloor.playbooks.paging_messages import page_message
from watchfloor.playbooks.paging_routes import Route, labels_of, matching
from watchfloor.playbooks.roster import Person

logger = logging.getLogger(__name__)

DutyLookup = Callable[[float], Awaitable[Mapping[str, Sequence[Person]]]]
"""Who holds each roster role at a Unix time (``{role: [Person]}``)."""


class PageState(msgspec.Struct):
    incident: str
    routes: list[int]
    started: float
    level: int = 0
    severity: str = "info"
    acked_by: str | None = None
    done: bool = False


class Pager:
    """Pages people for incidents; ``run(stop)`` follows changes and fires due levels."""

    def __init__(
        self,
        redis: aioredis.Redis,
        incidents: IncidentStore,
        notifier: Notifier,
        session: Callable[[], aiohttp.ClientSession],
        *,
        routes: Sequence[Route],
        levels: Sequence[tuple[float, str]],
        duty: DutyLookup,
        ack_key: bytes,
        base_url: str,
        ack_ttl_s: float = 3600.0,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        lang: str = "en",
    ) -> None:
        self.redis, self.incidents, self.notifier, self.session = (
            redis,
            incidents,
            notifier,
            session,
        )
        self.routes: list[Route] = []
        self.levels: list[tuple[float, str]] = []
        self.ack_ttl_s = ack_ttl_s
        self.set_policy(routes, levels, ack_ttl_s)
        self.duty, self.ack_key, self.base_url = duty, ack_key, base_url.rstrip("/")
        self.poll_s, self.clock = poll_s, clock
        self.lang = lang
        """The site's language (``[console] lang``): what a page says."""

    def set_policy(
        self, routes: Sequence[Route], levels: Sequence[tuple[float, str]], ack_ttl_s: float
    ) -> None:
        """Who is paged for what, and when (at start, and by a live reload)."""
        self.routes = list(routes)
        self.levels = list(levels) or [(0.0, "")]
        self.ack_ttl_s = ack_ttl_s

    async def run(self, stop: asyncio.Event) -> None:
        logger.info("pager started routes=%d levels=%d", len(self.routes), len(self.levels))
        while not stop.is_set():
            try:
                await self.step(block_ms=int(self.poll_s * 1000))
            except Exception:  # a task boundary: log, wait a turn, keep paging
                logger.exception("pager turn failed")
                await asyncio.sleep(self.poll_s)

    async def step(self, block_ms: int = 0) -> None:
        """One turn: the changes since the cursor, then every level that fell due."""
        await self.follow_changes(block_ms)
        await self.fire_due()

    async def follow_changes(self, block_ms: int = 0) -> None:
        cursor = await self._cursor()
        block = block_ms or None
        found: Any = await self.redis.xread({keys.CHANGES: cursor}, count=200, block=block)
        for _stream, entries in found or []:
            for entry_id, fields in entries:
                change = decode_change(fields)
                if change.get("kind") == "incident":
                    await self.on_incident(change["data"])
                await self.redis.set(keys.PAGING_CURSOR, entry_id)

    async def _cursor(self) -> str:
        raw = await self.redis.get(keys.PAGING_CURSOR)
        if raw is not None:
            return raw.decode() if isinstance(raw, bytes) else str(raw)
        # First start: page from now on, not for every incident of the stream's history.
        last: Any = await self.redis.xrevrange(keys.CHANGES, count=1)
        cursor: bytes = last[0][0] if last else b"0-0"
        await self.redis.set(keys.PAGING_CURSOR, cursor)
        return cursor.decode() if isinstance(cursor, bytes) else str(cursor)

    async def on_incident(self, incident: dict[str, Any]) -> None:
        state = await self._load(incident["id"])
        if state is None:
            if incident.get("state") == "open":
                await self._open(incident)
            return
        if state.done:
            return
        if incident.get("state") == "resolved":
            state.done = True
            await self._save(state)
            await self.redis.zrem(keys.PAGING_DUE, state.incident)
            await self._page(state, incident, "resolved", [])
        elif incident.get("state") == "acknowledged" and state.acked_by is None:
            state.acked_by = incident.get("acknowledged_by") or "someone"
            await self._save(state)
            await self.redis.zrem(keys.PAGING_DUE, state.incident)
            logger.info("page acknowledged incident=%s by=%s", state.incident, state.acked_by)
        elif severity_rank(incident["severity"]) > severity_rank(state.severity):
            state.severity = incident["severity"]
            await self._save(state)
            if state.acked_by is None:
                await self._page(state, incident, "raised", await self._people(state))

    async def _open(self, incident: dict[str, Any]) -> None:
        evidence = incident.get("evidence") or {}
        if evidence.get("silenced_by") or evidence.get("inhibited_by"):
            # A silence (a maintenance window) or a worse incident covers it: nobody is paged.
            logger.info("page held incident=%s silence=%s", incident["id"],
                        evidence.get("silenced_by") or evidence.get("inhibited_by"))  # fmt: skip
            return
        routes = matching(self.routes, labels_of(incident))
        if not routes:
            return
        now = self.clock()
        state = PageState(incident["id"], [r.index for r in routes], now,
                          severity=incident["severity"])  # fmt: skip
        await self._save(state)
        await self._schedule(state)
        await self._page(state, incident, "opened", await self._people(state))

    async def fire_due(self) -> None:
        due: list[Any] = await self.redis.zrangebyscore(keys.PAGING_DUE, "-inf", self.clock())
        for member in due:
            if await self.redis.zrem(keys.PAGING_DUE, member):  # claimed: this turn fires it
                await self._escalate(member.decode() if isinstance(member, bytes) else member)

    async def _escalate(self, incident_id: str) -> None:
        state = await self._load(incident_id)
        if state is None or state.done or state.acked_by is not None:
            return
        try:
            incident = (await self.incidents.get(incident_id)).to_dict()
        except IncidentNotFound:
            return
        if incident["state"] != "open":
            await self.on_incident(incident)  # the change was missed: settle it now
            return
        state.level += 1
        await self._save(state)
        await self._schedule(state)
        await self._page(state, incident, "escalation", await self._people(state))

    async def _schedule(self, state: PageState) -> None:
        following = state.level + 1
        if following < len(self.levels):
            due = state.started + self.levels[following][0]
            await self.redis.zadd(keys.PAGING_DUE, {state.incident: due})

    async def _people(self, state: PageState) -> list[tuple[str, Person]]:
        """``(role, person)`` paged at the state's level: its role, or the routes' roles."""
        level_role = self.levels[min(state.level, len(self.levels) - 1)][1]
        roles = [level_role] if level_role else self._route_roles(state)
        on_duty = await self.duty(self.clock())
        people: list[tuple[str, Person]] = []
        for role in roles:
            for person in on_duty.get(role, []):
                if all(person.id != p.id for _r, p in people):
                    people.append((role, person))
        return people

    def _route_roles(self, state: PageState) -> list[str]:
        roles: list[str] = []
        for route in self._routes_of(state):
            roles += [r for r in route.roles if r not in roles]
        return roles

    def _routes_of(self, state: PageState) -> list[Route]:
        return [r for r in self.routes if r.index in state.routes]

    async def _page(
        self,
        state: PageState,
        incident: dict[str, Any],
        event: str,
        people: list[tuple[str, Person]],
    ) -> None:
        links = {} if event == "resolved" else self._links(state, people)
        context = {"incident": state.incident, "severity": incident["severity"],
                   "purpose": "page", "event": event, "level": state.level}  # fmt: skip
        message = page_message(incident, event, people, links, context, self.lang)
        channels = dict.fromkeys(c for r in self._routes_of(state) for c in r.channels)
        for channel in channels:
            key = f"page:{state.incident}:{event}:{state.level}:{state.severity}:{channel}"
            result = await self.notifier.send(
                self.session(), channel, message, key=key, drill=False
            )
            await self._record(state, event, channel, people, result.ok, result.detail)

    def _links(self, state: PageState, people: list[tuple[str, Person]]) -> dict[str, str]:
        expires = self.clock() + self.ack_ttl_s
        return {
            p.id: f"{self.base_url}/v1/ack/"
            + make_token(self.ack_key, state.incident, p.name, role, expires)
            for role, p in people
        }

    async def _record(
        self, state: PageState, event: str, channel: str,
        people: list[tuple[str, Person]], ok: bool, detail: str,
    ) -> None:  # fmt: skip
        logger.info("paged incident=%s event=%s level=%d channel=%s people=%s ok=%s detail=%s",
                    state.incident, event, state.level, channel,
                    ",".join(p.name for _r, p in people), ok, detail)  # fmt: skip
        entry = {"at": self.clock(), "event": "paged", "actor": "pager", "page": event,
                 "level": state.level, "channel": channel, "ok": ok, "detail": detail,
                 "people": [p.name for _r, p in people]}  # fmt: skip
        await self.incidents.add_timeline(state.incident, entry)

    async def _load(self, incident_id: str) -> PageState | None:
        raw: Any = await self.redis.get(keys.page(incident_id))
        return None if raw is None else msgspec.msgpack.decode(raw, type=PageState)

    async def _save(self, state: PageState) -> None:
        # Kept a week after the last change: long enough for any late change to find it.
        await self.redis.set(keys.page(state.incident), msgspec.msgpack.encode(state), ex=7 * 86400)
