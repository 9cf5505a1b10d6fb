"""The playbook checker: every library playbook passes; every broken one is reported
with its file, step and field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from watchfloor.playbooks.errors import PlaybookInvalid
from watchfloor.playbooks.library import BUILTIN_DIR, Library, check_library
from watchfloor.playbooks.schema import check_data, check_file, parse, parse_duration

LIBRARY = (
    "network-outage",
    "system-crash",
    "contact-surge",
    "public-opinion",
    "data-leak",
    "sla-breach",
    "disaster",
    "audit-integrity",
)

GOOD = """
id = "t"
title = { zh = "测试", en = "Test" }
[start]
kinds = ["surge"]
[[steps]]
id = "a"
title = "A"
owner = "oncall"
deadline = "5m"
[[steps]]
id = "b"
title = "B"
owner = "duty_manager"
needs = ["a"]
"""


def with_steps(steps: str, start: str = 'kinds = ["surge"]') -> dict:
    return tomllib.loads(f'id = "t"\ntitle = {{ zh = "测", en = "T" }}\n[start]\n{start}\n' + steps)


def step(sid: str, extra: str = "", owner: str = "oncall") -> str:
    return f'[[steps]]\nid = "{sid}"\ntitle = "{sid}"\nowner = "{owner}"\n{extra}\n'


@pytest.mark.parametrize("name", LIBRARY)
def test_every_library_playbook_passes_check(name: str) -> None:
    assert check_file(BUILTIN_DIR / f"{name}.toml") == []


def test_library_loads_all_seven_and_the_check_of_the_whole_library_is_clean() -> None:
    assert {p.id for p in Library.load(strict=True)} == set(LIBRARY)
    assert check_library() == []


def test_library_titles_are_in_chinese_and_english() -> None:
    for playbook in Library.load():
        assert playbook.title_zh != playbook.title_en
        assert all(s.title_zh != s.title_en for s in playbook.steps)


CASES = [
    # (what is wrong, steps, start, expected (step, field, message part))
    (
        "unknown step in needs",
        step("a", 'needs = ["zz"]'),
        None,
        ("a", "needs", "unknown step 'zz'"),
    ),
    (
        "cycle",
        step("a", 'needs = ["b"]') + step("b", 'needs = ["a"]'),
        None,
        ("a", "needs", "cycle: a -> b -> a"),
    ),
    (
        "unreachable behind a cycle",
        step("a", 'needs = ["b"]') + step("b", 'needs = ["a"]') + step("c", 'needs = ["a"]'),
        None,
        ("c", "needs", "unreachable"),
    ),
    ("self need", step("a", 'needs = ["a"]'), None, ("a", "needs", "cannot need itself")),
    ("missing owner", '[[steps]]\nid = "a"\ntitle = "A"\n', None, ("a", "owner", "missing role")),
    ("unknown owner role", step("a", owner="boss"), None, ("a", "owner", "unknown role 'boss'")),
    (
        "owner that cannot act",
        step("a", owner="viewer"),
        None,
        ("a", "owner", "cannot work playbook steps"),
    ),
    ("bad duration", step("a", 'deadline = "5 minutes"'), None, ("a", "deadline", "bad duration")),
    ("zero deadline", step("a", "deadline = 0"), None, ("a", "deadline", "bad duration")),
    (
        "unknown action",
        step("a", 'action = { type = "sms", to = "x" }'),
        None,
        ("a", "action.type", "unknown action 'sms'"),
    ),
    (
        "notify without target",
        step("a", 'action = { type = "notify" }'),
        None,
        ("a", "action.target", "required"),
    ),
    (
        "unknown template variable",
        step("a", 'action = { type = "notify", target = "x", message = "{nope}" }'),
        None,
        ("a", "action.message", "unknown variable {nope}"),
    ),
    (
        "bad wait",
        step("a", 'action = { type = "wait", duration = "-1s" }'),
        None,
        ("a", "action.duration", "bad duration"),
    ),
    (
        "unknown approval role",
        step("a", 'approval = "ceo"'),
        None,
        ("a", "approval", "unknown role 'ceo'"),
    ),
    (
        "escalation without deadline",
        step("a", 'escalation = { notify = ["x"] }'),
        None,
        ("a", "escalation", "needs a deadline"),
    ),
    (
        "escalation repeat out of range",
        step("a", 'deadline = "1m"\nescalation = { notify = ["x"], repeat = 99, every = "1m" }'),
        None,
        ("a", "escalation.repeat", "from 1 to 20"),
    ),
    (
        "escalation telling nobody",
        step("a", 'deadline = "1m"\nescalation = { after = "1m" }'),
        None,
        ("a", "escalation", "tell someone"),
    ),
    ("unknown step key", step("a", 'deadlin = "5m"'), None, ("a", "deadlin", "unknown key")),
    ("duplicate step id", step("a") + step("a"), None, ("a", "id", "duplicate")),
    ("unknown incident kind", step("a"), 'kinds = ["fire"]', (None, "start.kinds", "'fire'")),
    (
        "bad min severity",
        step("a"),
        'kinds = ["surge"]\nmin_severity = "huge"',
        (None, "start.min_severity", "one of"),
    ),
    ("no trigger at all", step("a"), "", (None, "start", "manual_only")),
]


@pytest.mark.parametrize(("what", "steps", "start", "expected"), CASES, ids=[c[0] for c in CASES])
def test_check_reports_the_step_and_field_of_each_error(
    what: str, steps: str, start: str | None, expected: tuple
) -> None:
    errors = check_data(
        with_steps(steps, start if start is not None else 'kinds = ["surge"]'), "pb.toml"
    )
    found = [(e.step, e.field, e.message) for e in errors]
    step_id, fld, part = expected
    assert any(s == step_id and f == fld and part in m for s, f, m in found), found
    assert all(str(e).startswith("pb.toml: ") for e in errors)


def test_check_reports_every_error_not_only_the_first() -> None:
    data = with_steps(
        step("a", 'needs = ["zz"]\ndeadline = "x"', owner="boss")
        + step("b", 'action = { type = "sms" }')
    )
    fields = {(e.step, e.field) for e in check_data(data, "f.toml")}
    assert {("a", "needs"), ("a", "deadline"), ("a", "owner"), ("b", "action.type")} <= fields


def test_unknown_webhook_target_is_reported_when_targets_are_known() -> None:
    data = with_steps(step("a", 'action = { type = "notify", target = "nobody" }'))
    assert check_data(data, "f.toml") == []
    errors = check_data(data, "f.toml", targets={"duty-group"})
    assert [(e.step, e.field) for e in errors] == [("a", "action.target")]


def test_parse_refuses_an_invalid_playbook_and_builds_a_valid_one() -> None:
    playbook = parse(tomllib.loads(GOOD), "good.toml")
    assert [s.id for s in playbook.steps] == ["a", "b"] and playbook.steps[0].deadline_s == 300
    with pytest.raises(PlaybookInvalid) as info:
        parse(with_steps(step("a", 'needs = ["b"]')), "bad.toml")
    assert "bad.toml: step a: needs" in str(info.value)


def test_a_file_that_is_not_toml_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("id = ", encoding="utf-8")
    errors = check_file(bad)
    assert len(errors) == 1 and errors[0].field == "toml"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("7d", 604800),
        (15, 15),
        ("", None),
        ("5 m", None),
        (-1, None),
        (True, None),
        ("m", None),
    ],
)
def test_durations(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("kind", "rule", "severity", "subject", "expected"),
    [
        ("outage", "outage.component", "critical", "crm", "system-crash"),
        ("outage", "outage.heartbeat", "major", "network:hz-idc", "network-outage"),
        ("outage", "outage.component", "minor", "crm", None),
        ("surge", "surge.waiting", "major", "presales", "contact-surge"),
        ("sla", "sla.queue", "minor", "presales", "sla-breach"),
        ("opinion", "opinion.negative", "critical", "brand", "public-opinion"),
        ("leak", "leak.pii", "minor", "agent-7", "data-leak"),
        ("integrity", "audit.integrity", "critical", "audit-log", "audit-integrity"),
        ("manual", "manual", "critical", "site", None),
    ],
)
def test_incidents_are_matched_to_the_right_playbook(
    kind: str, rule: str, severity: str, subject: str, expected: str | None
) -> None:
    found = Library.load().match(kind, rule, severity, subject)
    assert (found.id if found else None) == expected
