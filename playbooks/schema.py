"""The playbook format (TOML) and its checker.

A playbook says when it starts (incident kinds, rules, a minimum severity, or
by hand only), which variables its messages may use, and its steps. A step has
an owner role, a deadline (relative to the run's start or to the step becoming
ready), the steps it ``needs`` first, an optional action, an optional approval
(a role that must approve before the step counts as done) and an optional
escalation (who is told, after how long, repeated up to N times).

:func:`check_data` (from :mod:`playbooks.checker`) reports *every* problem as a
:class:`CheckError` naming the file, step and field; :func:`parse` returns a
:class:`Playbook` or raises :class:`~playbooks.errors.PlaybookInvalid`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchfloor.playbooks.checker import (
    ACTIONS,
    DEADLINE_FROM,
    TEMPLATE_NAMES,
    CheckError,
    check_data,
    parse_duration,
)
from watchfloor.playbooks.errors import PlaybookInvalid

__all__ = [
    "ACTIONS",
    "DEADLINE_FROM",
    "TEMPLATE_NAMES",
    "CheckError",
    "Escalation",
    "Playbook",
    "Step",
    "Trigger",
    "check_data",
    "check_file",
    "load_file",
    "parse",
    "parse_duration",
    "parse_file",
]


@dataclass(frozen=True, slots=True)
class Escalation:
    after_s: float
    """Seconds after the deadline before the first escalation."""
    every_s: float
    """Seconds between two escalations."""
    repeat: int
    """How many escalations at most."""
    notify: tuple[str, ...] = ()
    """Webhook target names told at each escalation."""
    roles: tuple[str, ...] = ()
    """Roles named in the escalation message (who is expected to step in)."""
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title_en: str
    title_zh: str
    owner: str
    deadline_s: float | None
    deadline_from: str = "ready"
    needs: tuple[str, ...] = ()
    action: dict[str, Any] | None = None
    approval: str | None = None
    escalation: Escalation | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Trigger:
    kinds: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    """Rule names (globs) that start it; a rule match beats a kind match."""
    subjects: tuple[str, ...] = ()
    """Subject globs (``crm*``, ``network:*``) narrowing a kind match."""
    min_severity: str = "info"
    manual_only: bool = False


@dataclass(frozen=True, slots=True)
class Playbook:
    id: str
    title_en: str
    title_zh: str
    steps: tuple[Step, ...]
    trigger: Trigger = field(default_factory=Trigger)
    variables: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def load_file(path: str | Path) -> tuple[dict[str, Any] | None, list[CheckError]]:
    """The TOML of ``path`` as data, or a check error saying why it cannot be read."""
    name = str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8")), []
    except OSError as exc:
        return None, [CheckError(name, None, "file", f"cannot read: {exc.strerror}")]
    except tomllib.TOMLDecodeError as exc:
        return None, [CheckError(name, None, "toml", str(exc))]


def check_file(path: str | Path, targets: Iterable[str] | None = None) -> list[CheckError]:
    data, errors = load_file(path)
    return errors if data is None else check_data(data, str(path), targets)


def parse(
    data: dict[str, Any], source: str = "<playbook>", targets: Iterable[str] | None = None
) -> Playbook:
    """A checked :class:`Playbook`; raises :class:`PlaybookInvalid` listing every error."""
    errors = check_data(data, source, targets)
    if errors:
        raise PlaybookInvalid(errors)
    return _build(data, source)


def parse_file(path: str | Path, targets: Iterable[str] | None = None) -> Playbook:
    data, errors = load_file(path)
    if data is None:
        raise PlaybookInvalid(errors)
    return parse(data, str(path), targets)


# --- building --------------------------------------------------------------------


def _titles(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        return value, value
    return value["en"], value["zh"]


def _build_escalation(esc: dict[str, Any] | None) -> Escalation | None:
    if esc is None:
        return None
    repeat = int(esc.get("repeat", 1))
    after = parse_duration(esc.get("after", 0)) or 0.0
    every = parse_duration(esc["every"]) if "every" in esc else after or 60.0
    return Escalation(
        after_s=after,
        every_s=every or 60.0,
        repeat=repeat,
        notify=tuple(esc.get("notify", [])),
        roles=tuple(esc.get("roles", [])),
        message=esc.get("message"),
    )


def _build(data: dict[str, Any], source: str) -> Playbook:
    steps = []
    for raw in data["steps"]:
        en, zh = _titles(raw["title"])
        steps.append(
            Step(
                id=raw["id"],
                title_en=en,
                title_zh=zh,
                owner=raw["owner"],
                deadline_s=parse_duration(raw["deadline"]) if "deadline" in raw else None,
                deadline_from=raw.get("deadline_from", "ready"),
                needs=tuple(raw.get("needs", [])),
                action=dict(raw["action"]) if "action" in raw else None,
                approval=raw.get("approval"),
                escalation=_build_escalation(raw.get("escalation")),
                description=raw.get("description", ""),
            )
        )
    start = data.get("start", {})
    trigger = Trigger(
        kinds=tuple(start.get("kinds", [])),
        rules=tuple(start.get("rules", [])),
        subjects=tuple(start.get("subjects", [])),
        min_severity=start.get("min_severity", "info"),
        manual_only=bool(start.get("manual_only", False)),
    )
    en, zh = _titles(data["title"])
    return Playbook(
        id=data["id"],
        title_en=en,
        title_zh=zh,
        steps=tuple(steps),
        trigger=trigger,
        variables=dict(data.get("variables", {})),
        description=data.get("description", ""),
        source=source,
    )
