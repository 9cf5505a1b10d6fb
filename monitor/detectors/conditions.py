"""Conditions of one ongoing problem, merged into the one signal of its (rule, subject).

DESIGN.md: one ongoing problem is one incident. A detector that judges several
conditions of one subject (a queue's waits, service level and abandons; a
topic's volume, negative share and high-reach post) reports each breached
condition as a :class:`Breach` and merges them with :func:`merge`: the worst
condition gives the severity and the title, the others are named after it
("… (also …)"), and the evidence lists every condition in ``conditions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchfloor.core.vocabulary import SEVERITY_RANK


@dataclass(frozen=True, slots=True)
class Breach:
    """One breached condition of a subject, with the figures behind it."""

    condition: str
    severity: str
    title: str
    figures: dict[str, Any]

    def to_map(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "severity": self.severity,
            "title": self.title,
            **self.figures,
        }


def merge(found: Sequence[Breach]) -> tuple[Breach, str, dict[str, Any]]:
    """The worst breach, the title naming the others, and the merged evidence.

    The evidence has every condition's figures at the top level (the worst
    condition's win a shared name, then the others in order) and ``conditions``.
    """
    worst = max(found, key=lambda b: SEVERITY_RANK[b.severity])
    title = worst.title
    if len(found) > 1:
        others = ", ".join(b.condition.replace("_", " ") for b in found if b is not worst)
        title += f" (also {others})"
    evidence: dict[str, Any] = {}
    for breach in (worst, *found):
        for key, value in breach.figures.items():
            evidence.setdefault(key, value)
    evidence["conditions"] = [b.to_map() for b in found]
    return worst, title, evidence
