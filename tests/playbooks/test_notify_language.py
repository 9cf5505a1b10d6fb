"""Notifications in the site's language: a zh site's DingTalk message names the problem in
Chinese (composed from the incident's machine fields), an en site's keeps the engine's words.

Through the real pieces: the incident in the real store (Redis), the built-in library's
contact-surge "call in the standby agents" notify step, the executor built from the
config, a signed DingTalk-shaped receiver on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.playbooks.helpers import webhooks_toml
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.library import Library

SURGE = {"queue": "售前咨询", "channel": "chat", "offered": 90, "expected": 30.0, "ratio": 3.0,
         "window_s": 300}  # fmt: skip
ENGLISH = "Contact surge on 售前咨询: 3.0x baseline (90 offered in 5 min, 30 expected)"


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [("zh", "售前咨询 进线激增：基线的 3.0 倍", "Contact surge on"), ("en", ENGLISH, "进线激增：")],
)  # fmt: skip
async def test_a_step_notification_speaks_the_sites_language(
    redis_client: Any, receiver: Any, lang: str, expected: str, absent: str
) -> None:
    rec, base = receiver
    config = load_config(webhooks_toml(base) + f'\n[console]\nlang = "{lang}"\n')
    fired = await IncidentStore(redis_client).fire(
        kind="surge", rule="surge.offered", subject="售前咨询", severity="critical",
        title=ENGLISH, evidence=SURGE, at=1_700_000_000.0,
    )  # fmt: skip
    incident = fired.incident
    step = next(s for s in Library.load().get("contact-surge").steps if s.id == "call-standby")
    assert step.action is not None
    values = {"incident": incident.id, "title": incident.title, "subject": incident.subject,
              "severity": incident.severity, "kind": incident.kind, "rule": incident.rule,
              "run": "RUN-1", "step": step.id, "playbook": "contact-surge"}  # fmt: skip
    actions = ActionExecutor.from_config(redis_client, config, RetryPolicy(attempts=1))
    try:
        result = await actions.run(step.action, values=values, key="RUN-1:call", drill=False)
    finally:
        await actions.aclose()
    assert result.ok, result
    [message] = rec.of("dingtalk")
    text = message["body"]["markdown"]["text"]
    assert expected in text and absent not in text, text
