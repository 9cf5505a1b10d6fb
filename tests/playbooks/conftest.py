"""Fixtures of the playbook tests: a signature-checking receiver and a wired runner."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.playbooks.helpers import Receiver, RecordingAudit, webhooks_toml
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner


@pytest.fixture
async def receiver(serve_app: Any) -> tuple[Receiver, str]:
    rec = Receiver()
    base = await serve_app(rec.app)
    return rec, base


@pytest.fixture
async def wired(any_redis: Any, receiver: tuple[Receiver, str]) -> Any:
    """A runner on the built-in library, sending to the receiver, its loop running; on a
    single Redis, then on a Redis Cluster (every test using it runs on both)."""
    redis_client = any_redis
    rec, base = receiver
    config = load_config(webhooks_toml(base) + f'\n[playbooks]\ndrill_target = "{base}/drill"\n')
    actions = ActionExecutor.from_config(
        redis_client, config, RetryPolicy(attempts=3, backoff_s=0.05, timeout_s=2)
    )
    audit = RecordingAudit()
    incidents = IncidentStore(redis_client)
    runner = PlaybookRunner(
        redis_client, incidents, audit, Library.load(), actions=actions, poll_s=0.05
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    class Wired:
        pass

    w = Wired()
    w.runner, w.incidents, w.audit, w.receiver, w.base = runner, incidents, audit, rec, base
    w.redis = redis_client
    yield w
    stop.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(task, 2)
    await actions.aclose()
