"""The monitor process: rule engine, playbook runner, audit task and API, wired together.

DESIGN.md puts these in one process: the engine opens incidents, the runner
starts playbooks from them (its ``on_incident`` is the engine's hook), the
audit task mirrors the log to files and signs checkpoints, and the API serves
consoles. Several monitor processes (workers) may run against one Redis: the
engine worker leases events shards (:mod:`monitor.worker`), and the tasks that
must run once in the cluster (playbook timers, the pager, the audit mirror) run
where their lease is held (:class:`core.leases.LeasedTask`). Each part is a
``run(stop)`` task in one ``TaskGroup``; on ``stop`` the API stops taking
requests first, then the others drain and the shared Redis client closes last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from watchfloor.api.app import create_app, serve
from watchfloor.core import keys
from watchfloor.core.config import Config
from watchfloor.core.incidents import Incident, IncidentStore
from watchfloor.core.leases import LeasedTask
from watchfloor.monitor.checkpoint import IncidentHook
from watchfloor.monitor.service import MonitorService
from watchfloor.monitor.worker import MonitorWorker
from watchfloor.playbooks.paging import Pager
from watchfloor.playbooks.paging_setup import build_pager, stored_roster_duty
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.playbooks.worker import build_runner
from watchfloor.security.audit import AuditLog, open_audit
from watchfloor.security.tokens import TokenStore, load_seal

logger = logging.getLogger(__name__)

Task = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class MonitorProcess:
    """Everything the monitor process runs, built from one config and one Redis client."""

    config: Config
    redis: aioredis.Redis
    audit: AuditLog | None
    runner: PlaybookRunner
    service: MonitorWorker
    """The engine worker: the events shards it leases, one engine each."""
    app: web.Application
    tasks: list[Task] = field(default_factory=list)
    pager: Pager | None = None
    """Pages people from the changes stream (None: paging off); a reload swaps its routes."""

    @classmethod
    def build(
        cls,
        config: Config,
        redis: aioredis.Redis,
        *,
        worker_id: str | None = None,
        api: bool = True,
    ) -> MonitorProcess:
        audit = _open_audit(config, redis)
        runner = build_runner(redis, config, audit=audit)

        def shard_engine(shard: int, rules: Any) -> MonitorService:
            service = MonitorService(
                redis,
                config,
                rules=rules,
                on_incident=_hook(runner),
                audit=audit,
                consumer_name=worker.id,
                shard=shard,
                owner=worker.id,
            )
            # A run whose incidents the engine resolved stops paging people at once.
            service.applier.on_resolved = runner.on_resolved
            return service

        worker = MonitorWorker(redis, config, shard_engine, worker_id=worker_id)
        app = create_app(
            config,
            redis,
            incidents=IncidentStore(redis, changes_maxlen=config.redis.changes_maxlen),
            token_store=TokenStore(redis, seal=load_seal(config.data_dir, create=False)),
            runner=runner,
            audit=audit,
            admin_token=config.security.admin_token.value if config.security.admin_token else None,
        )
        if audit is not None:
            audit.on_problem = integrity_incident(IncidentStore(redis), runner.on_incident)
        process = cls(config, redis, audit, runner, worker, app)
        process.tasks = [worker.run, process.once("timers", runner.run)]
        if api:
            process.tasks.append(process.serve_api)
        # People are paged from the changes stream, so an incident with no notify step
        # (or no playbook at all) still reaches the person on duty.
        pager = build_pager(redis, config, IncidentStore(redis), runner.actions,
                            stored_roster_duty(redis))  # fmt: skip
        process.pager = pager
        if pager is not None:
            process.tasks.append(process.once("pager", pager.run))
        if audit is not None:
            process.tasks.append(process.once("audit", audit.run))
        return process

    def once(self, name: str, task: Task) -> Task:
        """``task`` run by one worker of the cluster at a time: whoever holds its lease."""
        ttl_s = self.config.monitor.lease_s
        leased = LeasedTask(self.redis, keys.task_lease(name), self.service.id, task, ttl_s=ttl_s)
        return leased.run

    async def serve_api(self, stop: asyncio.Event) -> None:
        """Serve the API on ``api.host:api.port`` until ``stop``."""
        await serve(self.app, self.config.api.host, self.config.api.port, stop)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every part until ``stop``; when one part fails, the others stop in order too."""

        async def part(task: Task) -> None:
            try:
                await task(stop)
            except BaseException:
                stop.set()  # the others finish their work cooperatively, not mid-write
                raise

        try:
            async with asyncio.TaskGroup() as group:
                for task in self.tasks:
                    group.create_task(part(task))
        finally:
            await self.runner.actions.aclose()


def integrity_incident(incidents: IncidentStore, on_incident: Any = None) -> Any:
    """The audit's problem hook: a fork or a rewritten tail opens a critical ``integrity``
    incident (one while it stays open: same rule and subject), so it is seen and worked;
    ``on_incident`` (the runner's hook) starts its playbook, which pages the security officer."""

    async def opened(problem: str, reason: str) -> None:
        result = await incidents.fire(
            kind="integrity",
            rule=f"audit.{problem}",
            subject="audit-log",
            severity="critical",
            title=f"Audit log {problem} problem: signing and mirroring stopped",
            evidence={"reason": reason[:500], "repair": "watchfloor audit repair"},
            at=time.time(),
        )
        if on_incident is not None and result.created:
            await on_incident(result.incident, created=True)

    return opened


def _hook(runner: PlaybookRunner) -> IncidentHook:
    """The engine's incident hook: the runner starts playbooks (its run is not the
    engine's business, so the result is dropped)."""

    async def start_playbooks(incident: Incident, created: bool, severity_raised: bool) -> None:
        await runner.on_incident(incident, created, severity_raised)

    return start_playbooks


def _open_audit(config: Config, redis: aioredis.Redis) -> AuditLog | None:
    try:
        return open_audit(config, redis)
    except Exception as exc:  # an engine without its audit still detects; say so loudly
        logger.error("audit log unavailable (run `watchfloor keys init`): %s", exc)
        return None
