"""Paging routes: Alertmanager-style matchers, first match wins unless ``continue``."""

from __future__ import annotations

import pytest

from watchfloor.core.config import load_config
from watchfloor.playbooks.paging_routes import (
    PagingConfigError,
    labels_of,
    matching,
    parse_routes,
)

ROUTES = """
[[paging.routes]]
matchers = ["kind = leak"]
roles = ["security_officer"]
channels = ["security"]
[[paging.routes]]
matchers = ["severity =~ critical|major", "subject !~ test-.*"]
channels = ["duty-group"]
continue = true
[[paging.routes]]
matchers = ["kind != opinion"]
roles = ["duty_manager"]
channels = ["management"]
"""


@pytest.mark.parametrize(
    ("kind", "severity", "subject", "chosen"),
    [
        ("leak", "critical", "agent-7", [0]),
        ("surge", "critical", "presale", [1, 2]),
        ("surge", "major", "test-queue", [2]),
        ("sla", "minor", "presale", [2]),
        ("opinion", "minor", "brand", []),
        ("opinion", "major", "brand", [1]),
    ],
)
def test_routes_match_in_order(kind: str, severity: str, subject: str, chosen: list[int]) -> None:
    routes = parse_routes(load_config(ROUTES).paging.routes)
    incident = {"kind": kind, "severity": severity, "subject": subject, "rule": "r"}
    assert [r.index for r in matching(routes, labels_of(incident))] == chosen


@pytest.mark.parametrize(
    ("matcher", "named"),
    [
        ("kind surge", "paging.routes[0].matchers[1]: 'kind surge' is not"),
        ("queue = presale", "paging.routes[0].matchers[1]: unknown label 'queue'"),
        ("subject =~ (", "paging.routes[0].matchers[1]: bad regular expression"),
    ],
)
def test_bad_matcher_is_named_by_route_and_index(matcher: str, named: str) -> None:
    config = load_config(f'[[paging.routes]]\nmatchers = ["kind = surge", "{matcher}"]\n')
    with pytest.raises(PagingConfigError, match=named.replace("(", r"\(").replace("[", r"\[")):
        parse_routes(config.paging.routes)


def test_no_routes_page_oncall_on_default() -> None:
    (route,) = parse_routes(())
    assert (route.roles, route.channels) == (("oncall",), ("default",))
