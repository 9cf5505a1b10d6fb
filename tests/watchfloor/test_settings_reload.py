"""The parts of a live reload: rules swapped into a running engine keep its state and take
effect on the next event; settings that are not valid are refused, each error named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watchfloor.core.config import load_config
from watchfloor.core.events import DataAccess, QueueStats
from watchfloor.monitor.rules import load_rules
from watchfloor.monitor.service import MonitorService
from watchfloor.settings_reload import ReloadRefused, load_settings

T0 = 1_765_000_000.0


def queue_stats(ts: float, waiting: int) -> QueueStats:
    return QueueStats(ts=ts, source="acd", queue="presale-chat",
                      channel="chat", waiting=waiting, longest_wait_s=20.0,
                      agents_available=3, agents_busy=9)  # fmt: skip


def export(ts: float, actor: str, records: int) -> DataAccess:
    return DataAccess(ts=ts, source="crm", actor=actor, action="export",
                      resource="orders", records=records)  # fmt: skip


def fires(actions: list[Any]) -> list[str]:
    return [a.signal.subject for a in actions if a.op == "fire"]


async def test_swapped_rules_keep_the_running_state_and_apply_to_the_next_event(
    redis_client: Any, tmp_path: Path
) -> None:
    config = load_config(f'data_dir = "{tmp_path}"\n')
    service = MonitorService(redis_client, config, rules=load_rules(), clock=lambda: T0 + 60)
    for i in range(30):
        service.engine.process([queue_stats(T0 + i, waiting=10 + i)])
    assert not fires(service.engine.process([export(T0 + 31, "agent-a", 500)]))
    before = service.engine.snapshot()

    service.swap_rules(load_rules(text="[leak]\nbulk_records = 100\n"))

    after = service.engine.snapshot()
    assert after["watermark"] == before["watermark"]
    assert after["buffer_batch"] == before["buffer_batch"]
    assert after["detectors"] == before["detectors"] and after["lifecycle"] == before["lifecycle"]
    assert service.rules.leak.get().bulk_records == 100
    actions = service.engine.process([export(T0 + 32, "agent-b", 500)])
    actions += service.engine.tick(T0 + 60)
    assert "agent-b" in fires(actions)


def test_settings_that_are_not_valid_are_refused_each_error_named(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[leak]\nbulk_records = "lots"\n')
    text = (
        f'[monitor]\nrules_file = "{rules}"\n'
        f'[playbooks]\nlibrary = "{tmp_path / "missing"}"\n'
        '[[webhooks]]\nname = "default"\nkind = "json"\nurl = "http://127.0.0.1:9/hook"\n'
        '[[webhooks]]\nname = "duty"\nkind = "telegram"\nurl = "ftp://x"\n'
    )
    with pytest.raises(ReloadRefused) as refused:
        load_settings(lambda: load_config(text))
    errors = refused.value.errors
    assert any(e.startswith("webhooks[1].kind: must be one of json") for e in errors), errors
    assert any(e.startswith("webhooks[1].url: must be an http") for e in errors), errors
    assert any("leak.bulk_records" in e for e in errors), errors
    assert any(e.startswith("playbooks.library: ") for e in errors), errors
    assert not any("webhooks[0]" in e for e in errors), errors


PAGING = """\
data_dir = "{data_dir}"
[paging]
enabled = {enabled}
ack_ttl_s = {ttl}
[playbooks]
delivery_lease_s = {lease}
[[webhooks]]
name = "default"
kind = "json"
url = "http://127.0.0.1:9/hook"
[[paging.routes]]
matchers = ["kind = {kind}"]
roles = [{roles}]
[[paging.escalation]]
after_s = 0
[[paging.escalation]]
after_s = {after}
role = "duty_manager"
"""


def paging_config(data_dir: Path, **values: Any) -> str:
    settings = {"enabled": "true", "ttl": 3600, "lease": 60, "kind": "leak",
                "roles": '"oncall"', "after": 300} | values  # fmt: skip
    return PAGING.format(data_dir=data_dir, **settings)


async def test_a_reload_swaps_the_running_pagers_routes_and_the_delivery_lease(
    redis_client: Any, tmp_path: Path
) -> None:
    from watchfloor.monitor_process import MonitorProcess
    from watchfloor.security.key_setup import init_keys
    from watchfloor.settings_reload import SettingsReloader

    init_keys(tmp_path)
    text = {"now": paging_config(tmp_path)}
    process = MonitorProcess.build(load_config(text["now"]), redis_client, api=False)
    pager = process.pager
    assert pager is not None and [r.roles for r in pager.routes] == [("oncall",)]
    reloader = SettingsReloader(process, lambda: load_config(text["now"]))

    text["now"] = paging_config(tmp_path, kind="surge", roles='"backup", "oncall"',
                                after=120, ttl=600, lease=90)  # fmt: skip
    result = await reloader.reload()

    assert result.ok, result.errors
    assert result.changed["paging"] == ["paging.routes", "paging.escalation", "paging.ack_ttl_s"]
    assert result.changed["playbook_settings"] == ["playbooks.delivery_lease_s"]
    assert result.needs_restart == []
    [route] = process.pager.routes
    assert route.roles == ("backup", "oncall") and "surge" in repr(route.matchers)
    assert pager.levels == [(0.0, ""), (120.0, "duty_manager")]
    assert pager.ack_ttl_s == 600.0
    assert process.runner.timers.delivery_lease_s == 90.0

    text["now"] = paging_config(tmp_path, roles="")  # a route paging nobody: refused whole
    refused = await reloader.reload()
    assert not refused.ok
    assert refused.errors == ["paging.routes[0].roles: name at least one roster role"]
    assert [r.roles for r in process.pager.routes] == [("backup", "oncall")]
    assert process.runner.timers.delivery_lease_s == 90.0
    await process.runner.actions.aclose()


async def test_paging_changed_without_a_running_pager_is_named_as_needing_a_restart(
    redis_client: Any, tmp_path: Path
) -> None:
    from watchfloor.monitor_process import MonitorProcess
    from watchfloor.security.key_setup import init_keys
    from watchfloor.settings_reload import SettingsReloader

    init_keys(tmp_path)
    text = {"now": paging_config(tmp_path, enabled="false")}
    process = MonitorProcess.build(load_config(text["now"]), redis_client, api=False)
    assert process.pager is None
    reloader = SettingsReloader(process, lambda: load_config(text["now"]))
    text["now"] = paging_config(tmp_path, enabled="true", kind="surge")
    result = await reloader.reload()
    assert result.ok, result.errors
    assert "paging.enabled" in result.needs_restart
    assert any(r.startswith("paging.routes (no pager is running") for r in result.needs_restart)
    assert "paging (a pager is wanted now: restart to start it)" in result.needs_restart
    await process.runner.actions.aclose()
