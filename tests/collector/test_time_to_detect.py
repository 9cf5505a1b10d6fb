"""Time to detect as a figure: each labelled emergency's limit read from the day's events,
one table per kind and emergency next to it, printed by ``watchfloor replay --days``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from watchfloor.cli import main
from watchfloor.collector.simulator.detect_limits import (
    LOG_BUDGET,
    limits_of_file,
    rate_change_limit,
    silence_limit,
)
from watchfloor.collector.simulator.detect_table import DayResult, table


def test_the_limits_follow_the_budget_formulas() -> None:
    assert pytest.approx(math.log(7 * 24 * 60)) == LOG_BUDGET
    # A queue of 18 contacts a minute gone silent: ln(1/p) / λ, about half a minute.
    assert silence_limit(18 / 60) == pytest.approx(LOG_BUDGET / 0.3)
    assert 25 < silence_limit(18 / 60) < 35
    # A 3x surge on 100 a minute: the CUSUM's expected delay, seconds; on 1 a minute, minutes.
    assert rate_change_limit(100 / 60, 3.0) == pytest.approx(
        LOG_BUDGET / (100 / 60 * (3 * math.log(3) - 2))
    )
    assert rate_change_limit(1 / 60, 3.0) == pytest.approx(100 * rate_change_limit(100 / 60, 3.0))
    assert silence_limit(0.0) == math.inf and rate_change_limit(1.0, 1.0) == math.inf


def test_an_outage_slice_is_scored_against_its_limit_in_one_table(tmp_path: Path) -> None:
    out = tmp_path / "slice.jsonl"
    args = ["simulate", "--scenario", "day-normal", "--window", "10:00-11:00", "--seed", "3"]
    assert main([*args, "--out", str(out)]) == 0
    expected = json.loads((tmp_path / "slice.expected.json").read_text("utf-8"))["expected"]
    incidents = tmp_path / "incidents.jsonl"
    replay = ["replay", str(out), "--out", str(incidents), "--data-dir", str(tmp_path / "d")]
    assert main(replay) == 0
    opened = [json.loads(line) for line in incidents.read_text("utf-8").splitlines()]
    limits = limits_of_file(out, expected)
    # Probes every 10 s; one failed probe is noise, the second in a row is decisive.
    assert 10 <= limits[0] <= 20
    text = table([DayResult("day-normal", 3, expected, opened, limits)])
    row = next(line for line in text.splitlines() if "order-api outage" in line)
    delay = opened[0]["opened_at"] - expected[0]["from_ts"]
    assert row.startswith("| outage | order-api outage | 1/1 |")
    assert f"| {delay:.0f} s | {delay:.0f} s | {delay:.0f} s | {limits[0]:.0f} s |" in row
    assert "False alarms: 0 in 1 days, **0.0 a day**." in text


def test_the_back_test_names_a_bad_day_or_seed(tmp_path: Path, capsys) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["replay", "--days", "day-nope", *data]) != 0
    assert "unknown day 'day-nope'" in capsys.readouterr().err
    assert main(["replay", "--days", "all", "--seeds", "one", *data]) != 0
    assert "--days/--seeds" in capsys.readouterr().err
    assert main(["replay", *data]) != 0
    assert "needs a FILE and --out" in capsys.readouterr().err
