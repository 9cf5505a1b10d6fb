"""The detector registry: what each detector declares once, in its own module.

A detector module declares its settings as a frozen dataclass whose fields are
made with :func:`setting` (type from the annotation; default, bounds and a
one-line doc here), and registers a :class:`DetectorSpec` naming its incident
kind, its rules section, its scopes and how to build it. Rules loading and
validation (:mod:`monitor.rules`), ``watchfloor rules``, ``default.toml`` and
the settings tables of docs/rules.md all derive from :func:`specs`, so a new
detector is one module (plus its tests): nothing else lists the detectors.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from watchfloor.core.vocabulary import ENGINE_KINDS

if TYPE_CHECKING:
    from watchfloor.monitor.detectors.base import Detector

T = TypeVar("T")
P = TypeVar("P")


class RegistryError(Exception):
    """A detector declared itself inconsistently (found at import, not at run time)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a setting accepts beyond its type, and its one-line doc."""

    doc: str
    low: float | None = 0.0
    """Smallest value (numbers); None: any."""
    high: float | None = None
    above_zero: bool = False
    """0 is refused too (a window or bucket of 0 s means nothing)."""
    choices: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None
    """Extra check of a value of the right type: the problem, or None."""


def setting(
    default: T,
    doc: str,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    above_zero: bool = False,
    choices: tuple[str, ...] = (),
    check: Callable[[Any], str | None] | None = None,
) -> T:
    """A rules setting: a dataclass field carrying its bounds and doc."""
    bounds = Bounds(doc, low, high, above_zero, choices, check)
    out: T = field(default=default, metadata={"bounds": bounds})
    return out


def bounds_of(f: dataclasses.Field[Any]) -> Bounds:
    found = f.metadata.get("bounds")
    if not isinstance(found, Bounds):
        raise RegistryError(f"{f.name}: declared without setting()")
    return found


@dataclass(frozen=True)
class DetectorSpec(Generic[P]):
    """One detector: its rules section (also its name), incident kind and settings."""

    section: str
    kind: str
    params: type[P]
    """The frozen dataclass of its settings (fields made with :func:`setting`)."""
    scopes: tuple[str, ...]
    """Scoped override tables, e.g. ``("channels", "queues")``: later scopes win."""
    build: Callable[[Any], Detector]
    """The detector class (or a factory) called with the :class:`monitor.rules.Rules`."""
    order: int
    """Position among the detectors (evaluation order, order in default.toml)."""
    title: str
    """One line for the default.toml banner and the docs."""
    notes: tuple[str, ...] = ()
    """Comment lines above the section in default.toml (sources of the figures)."""
    scoped_defaults: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    """Default overrides per scope, e.g. ``{"channels": {"chat": {"aht_s": 420}}}``."""
    scoped_notes: Mapping[str, str] = field(default_factory=dict)
    """A comment per scoped default, keyed ``"channels.chat"``."""

    def fields(self) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(self.params)  # type: ignore[arg-type]


_SPECS: dict[str, DetectorSpec[Any]] = {}
_discovered = False


def register(spec: DetectorSpec[P]) -> DetectorSpec[P]:
    """Called by a detector module at import; refuses what would fail only at run time."""
    if spec.kind not in ENGINE_KINDS:
        raise RegistryError(f"{spec.section}: unknown incident kind {spec.kind!r}")
    names = [f.name for f in dataclasses.fields(spec.params)]  # type: ignore[arg-type]
    for name in ("enabled", "for_s", "keep_firing_for_s"):
        if name not in names:
            raise RegistryError(f"{spec.section}: every detector has the setting {name}")
    for f in dataclasses.fields(spec.params):  # type: ignore[arg-type]
        bounds_of(f)
    for scope, table in spec.scoped_defaults.items():
        unknown = [k for values in table.values() for k in values if k not in names]
        if scope not in spec.scopes or unknown:
            raise RegistryError(f"{spec.section}.{scope}: unknown scope or key {unknown}")
    old = _SPECS.get(spec.section)
    if old is not None and old.params is not spec.params:
        raise RegistryError(f"{spec.section}: two detectors claim this section")
    _SPECS[spec.section] = spec
    return spec


def specs() -> list[DetectorSpec[Any]]:
    """Every registered detector in order (the detector modules are imported first)."""
    _discover()
    return sorted(_SPECS.values(), key=lambda s: (s.order, s.section))


def spec_for(section: str) -> DetectorSpec[Any] | None:
    _discover()
    return _SPECS.get(section)


def _discover() -> None:
    """Import every module of this package: detector modules register themselves."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    # By path, not by importing the package: the registry stays below its detectors.
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")
