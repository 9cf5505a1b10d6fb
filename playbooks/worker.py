"""Wiring a playbook runner from the configuration (the monitor, the CLI, the worker process).

The process that runs the timer loop alone is :mod:`watchfloor.playbook_worker`: a
library package installs no signal handler and configures no logging.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from watchfloor.core.config import Config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner


def build_runner(
    redis: aioredis.Redis,
    config: Config,
    *,
    audit: Any = None,
    library_dir: str | None = None,
    poll_s: float = 0.5,
    policy: RetryPolicy | None = None,
) -> PlaybookRunner:
    """A runner wired from ``config``: library, webhooks, drill target, auto-start."""
    library = Library.load(library_dir or config.playbooks.library)
    return PlaybookRunner(
        redis,
        IncidentStore(redis, changes_maxlen=config.redis.changes_maxlen),
        audit,
        library,
        actions=ActionExecutor.from_config(redis, config, policy),
        auto_start=config.playbooks.auto_start,
        poll_s=poll_s,
        delivery_lease_s=config.playbooks.delivery_lease_s,
        changes_maxlen=config.redis.changes_maxlen,
    )


def open_audit_or_none(config: Config, redis: aioredis.Redis) -> Any:
    try:
        from watchfloor.security.audit import open_audit
    except ImportError:  # a stack without the security package audits nothing
        return None
    return open_audit(config, redis)
