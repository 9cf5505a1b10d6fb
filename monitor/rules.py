"""Detector rules: the default figures, user overrides, per-queue/channel/topic scopes.

``monitor/rules/default.toml`` carries the source documents' figures. A user
rules file is merged over it key by key, so it only names what it changes. Each
detector section is a frozen dataclass (:class:`SurgeRules`, :class:`SlaRules`,
...) whose fields are the parameters; a section may hold scoped overrides
(``[sla.channels.chat]``, ``[sla.queues."vip-phone"]``, ``[opinion.topics.X]``)
that name any of the section's own fields, resolved by :meth:`Scoped.get`
(queue over channel over section). ``[lifecycle]`` and ``[inhibit]`` are the
engine's; they are checked here and passed on untouched in ``Rules.document``.

:func:`check_rules` reports every problem of a file by key, for
``watchfloor rules check``; :func:`load_rules` raises :class:`RulesError` with
the same messages.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

DEFAULT_RULES = Path(__file__).with_name("rules") / "default.toml"
SEVERITIES = ("info", "minor", "major", "critical")
INCIDENT_KINDS = ("surge", "sla", "outage", "opinion", "leak")


class RulesError(Exception):
    """A rules file could not be read or holds invalid values."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class SurgeRules:
    enabled: bool = True
    bucket_s: float = 10.0
    window_s: float = 300.0
    baseline_tau_s: float = 1800.0
    min_history_s: float = 1800.0
    ratio: float = 2.0
    clear_ratio: float = 1.5
    major_ratio: float = 3.0
    critical_ratio: float = 5.0
    min_count: float = 30.0
    min_excess: float = 20.0
    p_value: float = 1e-6
    recent_s: float = 1200.0
    use_last_week: bool = True
    for_s: float = 30.0
    keep_firing_for_s: float = 300.0


@dataclass(frozen=True, slots=True)
class SlaRules:
    enabled: bool = True
    longest_wait_s: float = 30.0
    clear_factor: float = 0.8
    major_factor: float = 2.0
    critical_factor: float = 4.0
    window_s: float = 900.0
    stale_s: float = 300.0
    service_level_target: float = 0.8
    min_answered: float = 20.0
    abandon_rate_limit: float = 0.10
    abandon_major: float = 0.20
    abandon_critical: float = 0.35
    min_offered: float = 20.0
    confidence_z: float = 1.645
    min_waiting: int = 5
    satisfaction_alert: bool = False
    satisfaction_target: float = 0.95
    satisfaction_major: float = 0.90
    satisfaction_window_s: float = 3600.0
    min_ratings: float = 50.0
    no_agents_for_s: float = 30.0
    aht_s: float = 300.0
    forecast: bool = True
    for_s: float = 60.0
    keep_firing_for_s: float = 120.0


@dataclass(frozen=True, slots=True)
class OutageRules:
    enabled: bool = True
    down_probes: int = 2
    down_after_s: float = 20.0
    up_probes_to_clear: int = 2
    down_severity: str = "critical"
    degraded_probes: int = 2
    error_rate_limit: float = 0.05
    error_rate_major: float = 0.25
    flap_probes: int = 10
    flap_failures: int = 4
    flap_ratio: float = 0.5
    flapping_for_s: float = 300.0
    heartbeat_factor: float = 3.0
    heartbeat_min_s: float = 30.0
    heartbeat_min_beats: int = 3
    heartbeat_severity: str = "major"
    silent_bucket_s: float = 30.0
    silent_window_s: float = 600.0
    silent_tau_s: float = 3600.0
    silent_min_history_s: float = 3600.0
    silent_min_expected: float = 30.0
    silent_max_ratio: float = 0.1
    silent_before_ratio: float = 0.5
    silent_p: float = 1e-6
    for_s: float = 0.0
    keep_firing_for_s: float = 60.0


@dataclass(frozen=True, slots=True)
class OpinionRules:
    enabled: bool = True
    bucket_s: float = 30.0
    window_s: float = 600.0
    baseline_tau_s: float = 3600.0
    recent_s: float = 1800.0
    floor_per_window: float = 2.0
    p_value: float = 1e-6
    min_count: float = 20.0
    ratio: float = 2.0
    major_ratio: float = 4.0
    critical_ratio: float = 10.0
    negative_below: float = -0.2
    negative_share: float = 0.5
    negative_share_rise: float = 0.25
    min_negative: float = 10.0
    high_reach_followers: int = 100_000
    critical_followers: int = 1_000_000
    high_reach_sentiment: float = -0.2
    high_reach_hold_s: float = 1800.0
    complaint_words: tuple[str, ...] = ()
    for_s: float = 0.0
    keep_firing_for_s: float = 600.0


@dataclass(frozen=True, slots=True)
class LeakRules:
    enabled: bool = True
    min_confidence: str = "medium"
    hold_s: float = 600.0
    critical_findings: int = 3
    bulk_records: int = 1000
    bulk_critical_records: int = 10_000
    bulk_actions: tuple[str, ...] = ("export", "download", "print")
    view_bucket_s: float = 60.0
    view_window_s: float = 600.0
    view_tau_s: float = 86_400.0
    view_ratio: float = 5.0
    view_min_records: float = 300.0
    view_new_actor_records: float = 1000.0
    working_hours: str = "08:00-24:00"
    utc_offset_h: float = 8.0
    off_hours_min_records: int = 20
    exempt_actors: tuple[str, ...] = ()
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scoped(Generic[T]):
    """A section's parameters plus its scoped overrides, resolved on demand (cached)."""

    base: T
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    _cache: dict[tuple[tuple[str, str], ...], T] = field(default_factory=dict, compare=False)

    def get(self, **scope: str | None) -> T:
        """Parameters for e.g. ``get(channel="chat", queue="vip")``: later scopes win."""
        key = tuple((k, v) for k, v in scope.items() if v)
        found = self._cache.get(key)
        if found is None:
            changes: dict[str, Any] = {}
            for kind, name in key:
                changes.update(self.overrides.get(_plural(kind), {}).get(name, {}))
            found = dataclasses.replace(self.base, **changes) if changes else self.base  # type: ignore[type-var]
            self._cache[key] = found
        return found


def _plural(kind: str) -> str:
    return kind + "s"


SECTIONS: dict[str, tuple[type, tuple[str, ...]]] = {
    "surge": (SurgeRules, ("channels", "queues")),
    "sla": (SlaRules, ("channels", "queues")),
    "outage": (OutageRules, ("components", "sources", "channels", "queues")),
    "opinion": (OpinionRules, ("topics",)),
    "leak": (LeakRules, ("actors",)),
}
ENGINE_SECTIONS = ("lifecycle", "inhibit")


@dataclass(frozen=True, slots=True)
class Rules:
    surge: Scoped[SurgeRules]
    sla: Scoped[SlaRules]
    outage: Scoped[OutageRules]
    opinion: Scoped[OpinionRules]
    leak: Scoped[LeakRules]
    document: Mapping[str, Any]
    """The merged TOML document (the engine reads ``[lifecycle]`` and ``[inhibit]``)."""

    def depends_on(self, queue: str) -> tuple[str, ...]:
        """Components a queue depends on (``[inhibit]``), for the signals' ``related``."""
        inhibit = self.document.get("inhibit") or {}
        return tuple(inhibit.get(queue, ()))


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
    for name, (cls, scopes) in SECTIONS.items():
        section = dict(document.get(name) or {})
        overrides = {
            s: {k: _convert(cls, v) for k, v in section.pop(s, {}).items()} for s in scopes
        }
        parts[name] = Scoped(cls(**_convert(cls, section)), overrides)
    return Rules(document=document, **parts)


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

_UNIT_SUFFIXES = ("_target", "_limit", "_share", "_ratio", "_major", "_critical", "_rise")
_SENTIMENT_KEYS = frozenset({"negative_below", "high_reach_sentiment"})
_UNIT_EXEMPT = frozenset({"ratio", "clear_ratio", "major_ratio", "critical_ratio", "view_ratio"})


def validate(document: Mapping[str, Any]) -> list[str]:
    """Every problem of a merged document, as ``key.path: what is wrong``."""
    errors: list[str] = []
    for key, value in document.items():
        if key in SECTIONS:
            errors += _check_section(key, value)
        elif key == "lifecycle":
            errors += _check_lifecycle(value)
        elif key == "inhibit":
            errors += _check_inhibit(value)
        else:
            errors.append(f"{key}: unknown section")
    return errors


def _check_section(name: str, section: Any) -> list[str]:
    if not isinstance(section, Mapping):
        return [f"{name}: must be a table"]
    cls, scopes = SECTIONS[name]
    errors: list[str] = []
    for key, value in section.items():
        if key in scopes:
            errors += _check_scopes(f"{name}.{key}", cls, value)
        else:
            errors += _check_value(cls, f"{name}.{key}", key, value)
    return errors


def _check_scopes(prefix: str, cls: type, table: Any) -> list[str]:
    if not isinstance(table, Mapping):
        return [f"{prefix}: must be a table of names"]
    errors: list[str] = []
    for scope, values in table.items():
        if not isinstance(values, Mapping):
            errors.append(f"{prefix}.{scope}: must be a table")
            continue
        for key, value in values.items():
            errors += _check_value(cls, f"{prefix}.{scope}.{key}", key, value)
    return errors


def _check_value(cls: type, path: str, key: str, value: Any) -> list[str]:
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    if key not in defaults:
        return [f"{path}: unknown key"]
    default = defaults[key]
    problem = _type_problem(default, value)
    if problem is None:
        problem = _range_problem(key, value)
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


def _range_problem(key: str, value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key in _SENTIMENT_KEYS:
            return None if -1 <= value <= 1 else f"must lie between -1 and 1, got {value}"
        if value < 0:
            return f"must not be negative, got {value}"
        unit = key.endswith(_UNIT_SUFFIXES) or key in ("p_value", "silent_p")
        if unit and key not in _UNIT_EXEMPT and value > 1:
            return f"must lie between 0 and 1, got {value}"
        if key.endswith(("bucket_s", "window_s", "tau_s")) and value == 0:
            return "must be above 0"
    if key.endswith("severity") and value not in SEVERITIES:
        return f"must be one of {', '.join(SEVERITIES)}, got {value!r}"
    if key == "min_confidence" and value not in ("low", "medium", "high"):
        return f"must be low, medium or high, got {value!r}"
    if key == "working_hours" and parse_hours(value) is None:
        return f"must look like 08:00-22:00, got {value!r}"
    return None


def parse_hours(text: str) -> tuple[int, int] | None:
    """``"08:00-22:00"`` -> minutes of the day (start, end); None if malformed."""
    try:
        start, end = text.split("-")
        out = []
        for part in (start, end):
            hours, minutes = part.strip().split(":")
            value = int(hours) * 60 + int(minutes)
            if not 0 <= int(minutes) < 60 or not 0 <= value <= 24 * 60:
                return None
            out.append(value)
    except ValueError:
        return None
    return out[0], out[1]


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
    unknown = [v for v in value if v not in INCIDENT_KINDS]
    if unknown:
        kinds = ", ".join(INCIDENT_KINDS)
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
