"""The playbook checker: every problem of a playbook file, with file, step and field.

:func:`check_data` takes a playbook as parsed TOML and reports *every* problem
it finds (not only the first) as a :class:`CheckError`: unknown keys, titles
missing a language, unknown roles or roles that cannot work steps, bad
durations, unknown steps in ``needs``, cycles and the steps stuck behind them,
unknown actions and their missing fields, unknown template variables,
escalations without a deadline or telling nobody, unknown webhook targets (when
the configured ones are given). :mod:`playbooks.schema` builds on it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from watchfloor.core.incidents import KINDS, SEVERITIES
from watchfloor.security.roles import ROLES, Permission, allows

ACTIONS: Final = frozenset({"notify", "set_flag", "http", "wait"})
DEADLINE_FROM: Final = frozenset({"start", "ready"})
TEMPLATE_NAMES: Final = frozenset(
    {
        "incident",
        "title",
        "subject",
        "severity",
        "kind",
        "rule",
        "run",
        "playbook",
        "step",
        "step_title",
        "drill",
    }
)
"""Names every message template may use, besides the playbook's own variables."""
MAX_REPEAT: Final = 20
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DURATION: Final = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TOP_KEYS: Final = frozenset({"id", "title", "description", "start", "variables", "steps"})
_START_KEYS: Final = frozenset({"kinds", "rules", "subjects", "min_severity", "manual_only"})
_STEP_KEYS: Final = frozenset(
    {
        "id",
        "title",
        "owner",
        "deadline",
        "deadline_from",
        "needs",
        "action",
        "approval",
        "escalation",
        "description",
    }
)
_ESC_KEYS: Final = frozenset({"after", "every", "repeat", "notify", "roles", "message"})
_ACTION_KEYS: Final = {
    "notify": ({"target"}, {"message", "title"}),
    "set_flag": ({"flag", "value"}, set()),
    "http": ({"url"}, {"method", "body", "timeout"}),
    "wait": ({"duration"}, set()),
}


@dataclass(frozen=True, slots=True)
class CheckError:
    """One problem of a playbook: where (file, step, field) and what."""

    file: str
    step: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"step {self.step}: " if self.step else ""
        return f"{self.file}: {where}{self.field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "step": self.step, "field": self.field, "message": self.message}


def parse_duration(value: Any) -> float | None:
    """Seconds of ``"90s"``, ``"5m"``, ``"1h30m"``, ``"7d"`` or a number; None if bad."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    match = _DURATION.match(value.strip())
    if not match or not any(match.groups()):
        return None
    d, h, m, s = (int(g or 0) for g in match.groups())
    return float(d * 86400 + h * 3600 + m * 60 + s)


class _Checker:
    def __init__(self, source: str, targets: Iterable[str] | None) -> None:
        self.source = source
        self.targets = frozenset(targets) if targets else None
        self.errors: list[CheckError] = []
        self.names: set[str] = set(TEMPLATE_NAMES)

    def add(self, step: str | None, fld: str, message: str) -> None:
        self.errors.append(CheckError(self.source, step, fld, message))

    def unknown_keys(
        self, table: dict[str, Any], allowed: Iterable[str], step: str | None, prefix: str = ""
    ) -> None:
        for key in sorted(set(table) - set(allowed)):
            self.add(step, f"{prefix}{key}", "unknown key")

    def title(self, value: Any, step: str | None) -> None:
        if isinstance(value, str) and value.strip():
            return
        if isinstance(value, dict):
            for lang in ("en", "zh"):
                text = value.get(lang)
                if not isinstance(text, str) or not text.strip():
                    self.add(step, f"title.{lang}", "missing (titles are in Chinese and English)")
            self.unknown_keys(value, ("en", "zh"), step, "title.")
            return
        self.add(step, "title", "missing: a string or a table {zh = ..., en = ...}")

    def role(self, value: Any, step: str | None, fld: str, *, acts: bool = False) -> None:
        if not isinstance(value, str) or not value:
            self.add(step, fld, "missing role")
        elif value not in ROLES:
            self.add(step, fld, f"unknown role {value!r} (one of {', '.join(sorted(ROLES))})")
        elif acts and not (allows(value, Permission.RUN_STEPS) or value == "security_officer"):
            self.add(step, fld, f"role {value!r} cannot work playbook steps")

    def duration(self, value: Any, step: str | None, fld: str, *, positive: bool) -> float | None:
        seconds = parse_duration(value)
        if seconds is None or (positive and seconds <= 0):
            self.add(step, fld, f"bad duration {value!r} (like 90s, 5m, 1h30m)")
        return seconds

    def template(self, text: Any, step: str | None, fld: str) -> None:
        if not isinstance(text, str):
            self.add(step, fld, "must be a string")
            return
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            self.add(step, fld, f"bad template: {exc}")
            return
        for name in fields:
            base = re.split(r"[.\[]", name, maxsplit=1)[0]
            if base not in self.names:
                self.add(step, fld, f"unknown variable {{{name}}}")


def check_data(
    data: dict[str, Any], source: str = "<playbook>", targets: Iterable[str] | None = None
) -> list[CheckError]:
    """Every problem of a playbook (as parsed TOML), in file order; empty when it is valid."""
    c = _Checker(source, targets)
    c.unknown_keys(data, _TOP_KEYS, None)
    pid = data.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        c.add(None, "id", "missing or not a lowercase id (letters, digits, - and _)")
    c.title(data.get("title"), None)
    _check_variables(c, data.get("variables", {}))
    _check_start(c, data.get("start", {}))
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        c.add(None, "steps", "a playbook needs at least one [[steps]]")
        return c.errors
    ids = _check_step_ids(c, steps)
    for index, step in enumerate(steps):
        if isinstance(step, dict):
            _check_step(c, step, ids, _step_name(step, index))
    _check_graph(c, steps, ids)
    return c.errors


def _step_name(step: dict[str, Any], index: int) -> str:
    sid = step.get("id")
    return sid if isinstance(sid, str) and sid else f"#{index + 1}"


def _check_variables(c: _Checker, variables: Any) -> None:
    if not isinstance(variables, dict):
        c.add(None, "variables", "must be a table of strings")
        return
    for name, value in variables.items():
        if not name.isidentifier():
            c.add(None, f"variables.{name}", "not a valid variable name")
        elif not isinstance(value, str):
            c.add(None, f"variables.{name}", "must be a string")
        else:
            c.names.add(name)


def _check_start(c: _Checker, start: Any) -> None:
    if not isinstance(start, dict):
        c.add(None, "start", "must be a table")
        return
    c.unknown_keys(start, _START_KEYS, None, "start.")
    kinds = start.get("kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        c.add(None, "start.kinds", "must be a list of incident kinds")
    else:
        for kind in kinds:
            if kind not in KINDS:
                c.add(None, "start.kinds", f"unknown incident kind {kind!r}")
    rules = start.get("rules", [])
    for key in ("rules", "subjects"):
        value = start.get(key, [])
        if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
            c.add(None, f"start.{key}", "must be a list of names (globs allowed)")
    if start.get("min_severity", "info") not in SEVERITIES:
        c.add(None, "start.min_severity", f"one of {', '.join(SEVERITIES)}")
    manual = start.get("manual_only", False)
    if not isinstance(manual, bool):
        c.add(None, "start.manual_only", "must be true or false")
    elif not manual and not kinds and not rules:
        c.add(None, "start", "give kinds or rules, or manual_only = true")


def _check_step_ids(c: _Checker, steps: list[Any]) -> set[str]:
    ids: set[str] = set()
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            c.add(f"#{index + 1}", "step", "must be a table")
            continue
        sid = step.get("id")
        if not isinstance(sid, str) or not _ID.match(sid):
            c.add(_step_name(step, index), "id", "missing or not a lowercase id")
        elif sid in ids:
            c.add(sid, "id", "duplicate step id")
        else:
            ids.add(sid)
    return ids


def _check_step(c: _Checker, step: dict[str, Any], ids: set[str], name: str) -> None:
    c.unknown_keys(step, _STEP_KEYS, name)
    c.title(step.get("title"), name)
    c.role(step.get("owner"), name, "owner", acts=True)
    if "deadline" in step:
        c.duration(step["deadline"], name, "deadline", positive=True)
    if step.get("deadline_from", "ready") not in DEADLINE_FROM:
        c.add(name, "deadline_from", "one of start, ready")
    needs = step.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        c.add(name, "needs", "must be a list of step ids")
    else:
        for need in needs:
            if need == name:
                c.add(name, "needs", "a step cannot need itself")
            elif need not in ids:
                c.add(name, "needs", f"unknown step {need!r}")
    if "approval" in step:
        c.role(step["approval"], name, "approval")
    if "action" in step:
        _check_action(c, step["action"], name)
    if "escalation" in step:
        _check_escalation(c, step["escalation"], name, "deadline" in step)


def _check_action(c: _Checker, action: Any, name: str) -> None:
    if not isinstance(action, dict):
        c.add(name, "action", "must be a table with a type")
        return
    kind = action.get("type")
    if kind not in ACTIONS:
        c.add(name, "action.type", f"unknown action {kind!r} (one of {', '.join(sorted(ACTIONS))})")
        return
    required, optional = _ACTION_KEYS[kind]
    for key in sorted(required - set(action)):
        c.add(name, f"action.{key}", f"required by a {kind} action")
    c.unknown_keys(action, required | optional | {"type"}, name, "action.")
    _ACTION_CHECKS[kind](c, action, name)


def _check_notify(c: _Checker, action: dict[str, Any], name: str) -> None:
    _check_target(c, action.get("target"), name, "action.target")
    for key in ("message", "title"):
        if key in action:
            c.template(action[key], name, f"action.{key}")


def _check_set_flag(c: _Checker, action: dict[str, Any], name: str) -> None:
    flag = action.get("flag")
    if not isinstance(flag, str) or not _ID.match(flag):
        c.add(name, "action.flag", "must be a flag name (lowercase id)")
    if "value" in action and not isinstance(action["value"], str | bool | int):
        c.add(name, "action.value", "must be a string, a number or a boolean")


def _check_http(c: _Checker, action: dict[str, Any], name: str) -> None:
    url = action.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        c.add(name, "action.url", "must be an http:// or https:// URL")
    if action.get("method", "POST") not in ("GET", "POST", "PUT"):
        c.add(name, "action.method", "one of GET, POST, PUT")
    if "timeout" in action:
        c.duration(action["timeout"], name, "action.timeout", positive=True)


def _check_wait(c: _Checker, action: dict[str, Any], name: str) -> None:
    c.duration(action.get("duration"), name, "action.duration", positive=True)


_ACTION_CHECKS: Final = {
    "notify": _check_notify,
    "set_flag": _check_set_flag,
    "http": _check_http,
    "wait": _check_wait,
}


def _check_target(c: _Checker, target: Any, name: str, fld: str) -> None:
    if not isinstance(target, str) or not target:
        c.add(name, fld, "must be a webhook target name")
    elif c.targets is not None and target not in c.targets:
        c.add(name, fld, f"no webhook named {target!r} in the config")


def _check_escalation(c: _Checker, esc: Any, name: str, has_deadline: bool) -> None:
    if not isinstance(esc, dict):
        c.add(name, "escalation", "must be a table")
        return
    c.unknown_keys(esc, _ESC_KEYS, name, "escalation.")
    if not has_deadline:
        c.add(name, "escalation", "escalation needs a deadline on the step")
    c.duration(esc.get("after", 0), name, "escalation.after", positive=False)
    repeat = esc.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        c.add(name, "escalation.repeat", f"must be an integer from 1 to {MAX_REPEAT}")
    elif repeat > 1 or "every" in esc:
        c.duration(esc.get("every"), name, "escalation.every", positive=True)
    notify = esc.get("notify", [])
    roles = esc.get("roles", [])
    if not isinstance(notify, list):
        c.add(name, "escalation.notify", "must be a list of webhook target names")
    else:
        for target in notify:
            _check_target(c, target, name, "escalation.notify")
    if not isinstance(roles, list):
        c.add(name, "escalation.roles", "must be a list of roles")
    else:
        for role in roles:
            c.role(role, name, "escalation.roles")
    if not notify and not roles:
        c.add(name, "escalation", "tell someone: give notify targets or roles")
    if "message" in esc:
        c.template(esc["message"], name, "escalation.message")


def _check_graph(c: _Checker, steps: list[Any], ids: set[str]) -> None:
    """Cycles in ``needs``, and steps that can never become ready because of them."""
    needs = {
        s["id"]: [n for n in s.get("needs", []) if n in ids]
        for s in steps
        if isinstance(s, dict) and s.get("id") in ids and isinstance(s.get("needs", []), list)
    }
    reachable: set[str] = set()
    changed = True
    while changed:  # a step is reachable once every step it needs is
        changed = False
        for sid, deps in needs.items():
            if sid not in reachable and all(d in reachable for d in deps):
                reachable.add(sid)
                changed = True
    stuck = [sid for sid in needs if sid not in reachable]
    in_cycle = _cycle_members(needs)
    for sid in stuck:
        if sid in in_cycle:
            c.add(sid, "needs", f"cycle: {' -> '.join(in_cycle[sid])}")
        else:
            c.add(sid, "needs", "unreachable: it waits for a step in a cycle")


def _cycle_members(needs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each step on a cycle -> the cycle's path starting and ending at that step."""
    found: dict[str, list[str]] = {}
    for start in needs:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for dep in needs.get(node, []):
                if dep == start:
                    found[start] = [*path, start]
                    stack.clear()
                    break
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, [*path, dep]))
    return found
