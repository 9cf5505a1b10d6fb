"""Rules: defaults with the documents' figures, scoped overrides, errors by key, the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchfloor.cli import main
from watchfloor.monitor.detector_set import build_detectors
from watchfloor.monitor.detectors.registry import specs
from watchfloor.monitor.rules import RulesError, check_rules, load_rules


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("channel", "seconds"),
    [("chat", 30.0), ("phone", 15.0), ("email", 86400.0), ("ticket", 86400.0), ("social", 3600.0)],
)
def test_defaults_carry_the_source_documents_thresholds(channel: str, seconds: float) -> None:
    assert load_rules().sla.get(channel=channel).longest_wait_s == seconds


def test_defaults_carry_the_other_figures() -> None:
    rules = load_rules()
    assert rules.sla.base.satisfaction_target == 0.95
    assert rules.sla.base.satisfaction_major == 0.90
    assert rules.leak.base.bulk_records == 1000
    assert rules.outage.base.down_probes == 2
    assert rules.outage.base.down_after_s == 20
    assert rules.outage.base.heartbeat_min_s == 30
    assert "维权" in rules.opinion.base.complaint_words


def test_a_queue_override_wins_over_its_channel() -> None:
    rules = load_rules(
        text="[sla.channels.phone]\nlongest_wait_s = 20\n"
        '[sla.queues."vip-phone"]\nlongest_wait_s = 10'
    )
    assert rules.sla.get(channel="phone", queue="vip-phone").longest_wait_s == 10
    assert rules.sla.get(channel="phone", queue="other").longest_wait_s == 20
    assert rules.sla.get(channel="phone", queue="vip-phone").abandon_rate_limit == 0.10


def test_a_user_file_only_names_what_it_changes(tmp_path: Path) -> None:
    rules = load_rules(
        write(tmp_path, "[surge]\nratio = 3.0\n[inhibit]\npresale-chat = ['chat-gw']")
    )
    assert rules.surge.base.ratio == 3.0
    assert rules.surge.base.min_count == 30
    assert rules.depends_on("presale-chat") == ("chat-gw",)
    assert rules.document["lifecycle"]["cap_per_minute"] == 10


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[surge]\nratioo = 2", "surge.ratioo: unknown key"),
        (
            '[sla.channels.chat]\nlongest_wait_s = "30"',
            "sla.channels.chat.longest_wait_s: must be a number",
        ),
        (
            "[sla]\nservice_level_target = 80",
            "sla.service_level_target: must lie between 0 and 1, got 80",
        ),
        ("[outage]\ndown_probes = 1.5", "outage.down_probes: must be an integer"),
        ("[outage]\nheartbeat_min_s = -1", "outage.heartbeat_min_s: must not be negative, got -1"),
        (
            '[outage]\ndown_severity = "huge"',
            "outage.down_severity: must be one of info, minor, major, critical, got 'huge'",
        ),
        (
            '[leak]\nworking_hours = "8-22"',
            "leak.working_hours: must look like 08:00-22:00, got '8-22'",
        ),
        ("[leak]\nbulk_actions = [1]", "leak.bulk_actions: must be a list of strings"),
        (
            "[opinion]\nnegative_below = -2",
            "opinion.negative_below: must lie between -1 and 1, got -2",
        ),
        ("[surge]\nbucket_s = 0", "surge.bucket_s: must be above 0"),
        ("[surge.queues]\nx = 3", "surge.queues.x: must be a table"),
        ("[lifecycle]\ncap_per_minute = 0", "lifecycle.cap_per_minute: must be a positive number"),
        ("[inhibit]\nq = 'crm'", "inhibit.q: must be a list of component names"),
        (
            "[lifecycle]\nauto_resolve = 'sla'",
            "lifecycle.auto_resolve: must be a list of incident kinds",
        ),
        (
            "[lifecycle]\nauto_resolve = ['sla', 'outages']",
            "lifecycle.auto_resolve: unknown kind 'outages'",
        ),
        ("[alerts]\nx = 1", "alerts: unknown section"),
        ("[surge\nratio = 2", "not valid TOML"),
    ],
)
def test_check_rules_names_the_key_of_every_error(tmp_path: Path, text: str, error: str) -> None:
    errors = check_rules(write(tmp_path, text))
    assert len(errors) == 1
    assert error in errors[0]


def test_load_rules_refuses_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"surge\.ratioo"):
        load_rules(write(tmp_path, "[surge]\nratioo = 2"))


def test_a_disabled_detector_is_not_built() -> None:
    names = [d.name for d in build_detectors(load_rules(text="[opinion]\nenabled = false"))]
    assert names == [s.section for s in specs() if s.section != "opinion"]
    assert {"surge", "sla", "outage", "leak"} <= set(names)


def test_rules_check_command_exits_1_with_errors_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[surge]\nratioo = 2\n[sla]\nmin_answered = 'x'")
    assert main(["rules", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "surge.ratioo: unknown key" in err
    assert "sla.min_answered: must be a number" in err


def test_rules_check_command_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[sla.queues."vip-phone"]\nlongest_wait_s = 10')
    assert main(["rules", "check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_rules_show_resolves_a_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[sla.queues."vip-phone"]\nlongest_wait_s = 10')
    args = ["rules", "show", "--file", str(path), "--section", "sla", "--data-dir", str(tmp_path)]
    assert main([*args, "--channel", "phone", "--queue", "vip-phone"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[sla]")
    assert "longest_wait_s = 10.0" in out


def test_lifecycle_auto_resolve_is_accepted_and_reaches_the_lifecycle(tmp_path: Path) -> None:
    from watchfloor.monitor.lifecycle import LifecycleConfig

    path = write(tmp_path, "[lifecycle]\nauto_resolve = ['sla', 'leak']")
    assert check_rules(path) == []
    config = LifecycleConfig.from_rules(load_rules(path).document)
    assert config.auto_resolve == frozenset({"sla", "leak"})
