"""The rules a detector reads: each section's parameters and their scoped overrides.

:mod:`monitor.rules` loads, merges and validates a rules file into a :class:`Rules`; the
detectors (:mod:`monitor.detectors`) only read one. Keeping the reader's types here, below
both, is what lets the rules loader ask the detector registry for its sections while every
detector imports these types: neither imports the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from watchfloor.monitor.detectors.registry import DetectorSpec

T = TypeVar("T")
P = TypeVar("P")


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


@dataclass(frozen=True, slots=True)
class Rules:
    sections: Mapping[str, Scoped[Any]]
    """Each detector's section by name (``rules.sla`` is ``rules.sections["sla"]``)."""
    document: Mapping[str, Any]
    """The merged TOML document (the engine reads ``[lifecycle]`` and ``[inhibit]``)."""

    def __getattr__(self, name: str) -> Scoped[Any]:
        if name.startswith("_") or name in ("sections", "document"):
            raise AttributeError(name)
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(f"no detector section {name!r}") from None

    def section(self, spec: DetectorSpec[P]) -> Scoped[P]:
        """A detector's section, typed by its spec."""
        found: Scoped[P] = self.sections[spec.section]
        return found

    def depends_on(self, queue: str) -> tuple[str, ...]:
        """Components a queue depends on (``[inhibit]``), for the signals' ``related``."""
        inhibit = self.document.get("inhibit") or {}
        return tuple(inhibit.get(queue, ()))


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


def check_hours(value: Any) -> str | None:
    """A setting check: ``"08:00-22:00"`` (a range across midnight works)."""
    return None if parse_hours(value) is not None else f"must look like 08:00-22:00, got {value!r}"
