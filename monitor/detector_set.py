"""The detectors a set of rules asks for: what the engine runs."""

from __future__ import annotations

from watchfloor.monitor.detectors.base import Detector
from watchfloor.monitor.detectors.registry import specs
from watchfloor.monitor.rules import Rules, load_rules


def build_detectors(rules: Rules | None = None) -> list[Detector]:
    """One instance of each enabled registered detector, configured by ``rules`` (defaults if
    None), in the registry's order."""
    rules = rules or load_rules()
    return [spec.build(rules) for spec in specs() if rules.sections[spec.section].base.enabled]
