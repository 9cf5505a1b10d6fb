"""Paging routes: Alertmanager-style matchers from an incident to roster roles and channels.

A route holds matchers on the incident's labels (``kind``, ``severity``,
``subject``, ``rule``, ``tenant``) with ``=``, ``!=``, ``=~`` and ``!~`` (regular
expressions match the whole value, as in Alertmanager). Routes are tried in
order; the first that matches wins unless it says ``continue = true``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from watchfloor.playbooks.errors import PlaybookError

LABELS: Final = ("kind", "severity", "subject", "rule", "tenant")
_MATCHER = re.compile(r"^\s*([a-z_]+)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class PagingConfigError(PlaybookError):
    """A paging route or matcher is malformed; the message names the route and matcher."""


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.pattern is not None:
            found = self.pattern.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) if self.op == "=" else (actual != self.value)


@dataclass(frozen=True, slots=True)
class Route:
    index: int
    matchers: tuple[Matcher, ...]
    roles: tuple[str, ...]
    channels: tuple[str, ...]
    continue_: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


DEFAULT_ROUTE: Final = Route(0, (), ("oncall",), ("default",))
"""With no routes configured every incident pages the on-call person on ``default``."""


def parse_matcher(text: str, where: str) -> Matcher:
    found = _MATCHER.match(text)
    if found is None:
        raise PagingConfigError(f"{where}: {text!r} is not `label op value` (=, !=, =~, !~)")
    label, op, value = found.groups()
    value = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if label not in LABELS:
        raise PagingConfigError(f"{where}: unknown label {label!r} (one of {', '.join(LABELS)})")
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise PagingConfigError(f"{where}: bad regular expression {value!r}: {exc}") from None
    return Matcher(label, op, value, pattern)


def parse_routes(configured: Sequence[Any]) -> tuple[Route, ...]:
    """Routes from ``config.paging.routes``; raises naming ``paging.routes[i].matchers[j]``."""
    routes = []
    for i, item in enumerate(configured):
        where = f"paging.routes[{i}]"
        matchers = tuple(
            parse_matcher(text, f"{where}.matchers[{j}]") for j, text in enumerate(item.matchers)
        )
        if not item.roles:
            raise PagingConfigError(f"{where}.roles: name at least one roster role")
        routes.append(Route(i, matchers, tuple(item.roles), tuple(item.channels), item.continue_))
    return tuple(routes) or (DEFAULT_ROUTE,)


def labels_of(incident: Mapping[str, Any]) -> dict[str, str]:
    return {label: str(incident.get(label) or "") for label in LABELS}


def matching(routes: Sequence[Route], labels: Mapping[str, str]) -> list[Route]:
    """The routes an incident takes: up to the first match without ``continue``."""
    chosen = []
    for route in routes:
        if route.matches(labels):
            chosen.append(route)
            if not route.continue_:
                break
    return chosen
