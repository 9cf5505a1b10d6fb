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
    assert after["watermark"] == before["watermark"] and after["buffer"] == before["buffer"]
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
