"""Detector rules: the registered defaults, user overrides, per-queue/channel/topic scopes.

Every detector declares its settings once, in its own module, and registers
them (:mod:`monitor.detectors.registry`): types, defaults, bounds and docs all
come from there. ``monitor/rules/default.toml`` is generated from the registry
(``python -m watchfloor.monitor.rules --write-defaults``; a test fails if it differs). A
user rules file is merged over it key by key, so it only names what it changes.
A section may hold scoped overrides (``[sla.channels.chat]``,
``[sla.queues."vip-phone"]``, ``[opinion.topics.X]``) that name any of the
section's own settings, resolved by :meth:`Scoped.get` (queue over channel over
section). ``[lifecycle]`` and ``[inhibit]`` are the engine's; they are checked
here and passed on untouched in ``Rules.document``.

:func:`check_rules` reports every problem of a file by key, for
``watchfloor rules check``; :func:`load_rules` raises :class:`RulesError` with
the same messages.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from watchfloor.core.vocabulary import SEVERITIES
from watchfloor.monitor.detectors.registry import DetectorSpec, bounds_of, spec_for, specs
from watchfloor.monitor.planned import CALENDAR_SECTIONS, check_calendar
from watchfloor.monitor.rule_set import Rules, Scoped, check_hours, parse_hours

logger = logging.getLogger(__name__)

DEFAULT_RULES = Path(__file__).with_name("rules") / "default.toml"
RULES_DOC = Path(__file__).parents[1] / "docs" / "rules.md"
ENGINE_SECTIONS = ("lifecycle", "inhibit")
__all__ = [
    "SEVERITIES",
    "Rules",
    "RulesError",
    "Scoped",
    "check_hours",
    "check_rules",
    "load_rules",
    "parse_hours",
]


def incident_kinds() -> tuple[str, ...]:
    """The kinds the detectors raise (what ``lifecycle.auto_resolve`` may name)."""
    return tuple(dict.fromkeys(s.kind for s in specs()))


def section_names() -> tuple[str, ...]:
    """The detectors' rules sections, in order."""
    return tuple(s.section for s in specs())


class RulesError(Exception):
    """A rules file could not be read or holds invalid values."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


T = TypeVar("T")
P = TypeVar("P")


def load_rules(path: str | Path | None = None, *, text: str | None = None) -> Rules:
    """Default rules merged with a user file (or TOML text); raises :class:`RulesError`."""
    document = _read(DEFAULT_RULES.read_text(encoding="utf-8"), str(DEFAULT_RULES))
    if path is not None:
        document = merge(document, _read(Path(path).read_text(encoding="utf-8"), str(path)))
    if text is not None:
        document = merge(document, _read(text, "<rules>"))
    errors = validate(document)
    if errors:
        raise RulesError(errors)
    return build(document)


def check_rules(path: str | Path) -> list[str]:
    """Every error of a user rules file merged over the defaults, each naming its key."""
    try:
        user = _read(Path(path).read_text(encoding="utf-8"), str(path))
    except RulesError as exc:
        return exc.errors
    except OSError as exc:
        return [f"{path}: {exc.strerror or exc}"]
    defaults = _read(DEFAULT_RULES.read_text(encoding="utf-8"), str(DEFAULT_RULES))
    return validate(merge(defaults, user))


def _read(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError([f"{name}: not valid TOML: {exc}"]) from None


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of tables; values (and arrays) of ``over`` replace those of ``base``."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(document: Mapping[str, Any]) -> Rules:
    """Typed rules from a validated document."""
    parts: dict[str, Scoped[Any]] = {}
    for spec in specs():
        cls = spec.params
        section = dict(document.get(spec.section) or {})
        overrides = {
            s: {k: _convert(cls, v) for k, v in section.pop(s, {}).items()} for s in spec.scopes
        }
        parts[spec.section] = Scoped(cls(**_convert(cls, section)), overrides)
    return Rules(sections=parts, document=document)


def _convert(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    kinds = {f.name: type(f.default) for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        kind = kinds[key]
        if kind is float:
            value = float(value)
        elif kind is tuple:
            value = tuple(value)
        out[key] = value
    return out


# --- validation --------------------------------------------------------------------------


def validate(document: Mapping[str, Any]) -> list[str]:
    """Every problem of a merged document, as ``key.path: what is wrong``."""
    errors: list[str] = []
    for key, value in document.items():
        spec = spec_for(key)
        if spec is not None:
            errors += _check_section(spec, value)
        elif key == "lifecycle":
            errors += _check_lifecycle(value)
        elif key == "inhibit":
            errors += _check_inhibit(value)
        elif key in CALENDAR_SECTIONS:
            errors += check_calendar(key, value)
        else:
            errors.append(f"{key}: unknown section")
    return errors


def _check_section(spec: DetectorSpec[Any], section: Any) -> list[str]:
    if not isinstance(section, Mapping):
        return [f"{spec.section}: must be a table"]
    fields = {f.name: f for f in spec.fields()}
    errors: list[str] = []
    for key, value in section.items():
        if key in spec.scopes:
            errors += _check_scopes(f"{spec.section}.{key}", fields, value)
        else:
            errors += _check_value(fields, f"{spec.section}.{key}", key, value)
    return errors


def _check_scopes(
    prefix: str, fields: Mapping[str, dataclasses.Field[Any]], table: Any
) -> list[str]:
    if not isinstance(table, Mapping):
        return [f"{prefix}: must be a table of names"]
    errors: list[str] = []
    for scope, values in table.items():
        if not isinstance(values, Mapping):
            errors.append(f"{prefix}.{scope}: must be a table")
            continue
        for key, value in values.items():
            errors += _check_value(fields, f"{prefix}.{scope}.{key}", key, value)
    return errors


def _check_value(
    fields: Mapping[str, dataclasses.Field[Any]], path: str, key: str, value: Any
) -> list[str]:
    found = fields.get(key)
    if found is None:
        return [f"{path}: unknown key"]
    problem = _type_problem(found.default, value)
    if problem is None:
        problem = _range_problem(found, value)
    return [f"{path}: {problem}"] if problem else []


def _type_problem(default: Any, value: Any) -> str | None:
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be a string"
    if isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of strings"
    return None


def _range_problem(f: dataclasses.Field[Any], value: Any) -> str | None:
    """The setting's declared bounds (:func:`monitor.detectors.registry.setting`)."""
    b = bounds_of(f)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if b.low is not None and b.high is not None and not b.low <= value <= b.high:
            return f"must lie between {b.low:g} and {b.high:g}, got {value}"
        if b.low is not None and value < b.low:
            return f"must not be negative, got {value}" if b.low == 0 else _at_least(b.low, value)
        if b.above_zero and value == 0:
            return "must be above 0"
    if b.choices and value not in b.choices:
        return f"must be one of {', '.join(b.choices)}, got {value!r}"
    return b.check(value) if b.check is not None else None


def _at_least(low: float, value: float) -> str:
    return f"must be at least {low:g}, got {value}"


def _check_lifecycle(section: Any) -> list[str]:
    if not isinstance(section, Mapping):
        return ["lifecycle: must be a table"]
    errors = []
    for key, value in section.items():
        if key == "auto_resolve":
            errors += _check_auto_resolve(value)
        elif key not in ("flap_window_s", "flap_threshold", "cap_per_minute"):
            errors.append(f"lifecycle.{key}: unknown key")
        elif not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            errors.append(f"lifecycle.{key}: must be a positive number")
    return errors


def _check_auto_resolve(value: Any) -> list[str]:
    """``auto_resolve``: the incident kinds the engine resolves itself when they clear."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ["lifecycle.auto_resolve: must be a list of incident kinds"]
    kinds_known = incident_kinds()
    unknown = [v for v in value if v not in kinds_known]
    if unknown:
        kinds = ", ".join(kinds_known)
        return [f"lifecycle.auto_resolve: unknown kind {unknown[0]!r} (one of {kinds})"]
    return []


def _check_inhibit(section: Any) -> list[str]:
    if not isinstance(section, Mapping):
        return ["inhibit: must be a table of queue = [components]"]
    return [
        f"inhibit.{queue}: must be a list of component names"
        for queue, comps in section.items()
        if not isinstance(comps, list) or not all(isinstance(c, str) for c in comps)
    ]


def _main(argv: list[str]) -> int:
    """``python -m watchfloor.monitor.rules --write-defaults [--write-docs]``: regenerate
    default.toml and the settings tables of docs/rules.md from the registry."""
    from watchfloor.monitor.detectors.rendering import render_default_toml, update_doc

    if not argv or not set(argv) <= {"--write-defaults", "--write-docs"}:
        print(
            "usage: python -m watchfloor.monitor.rules --write-defaults [--write-docs]",
            file=sys.stderr,
        )
        return 2
    if "--write-defaults" in argv:
        DEFAULT_RULES.write_text(render_default_toml(), encoding="utf-8")
        print(f"wrote {DEFAULT_RULES}")
    if "--write-docs" in argv:
        RULES_DOC.write_text(update_doc(RULES_DOC.read_text("utf-8")), encoding="utf-8")
        print(f"wrote {RULES_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
