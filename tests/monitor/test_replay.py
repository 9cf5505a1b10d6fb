"""Replay: a recorded file through the same engine, incidents out, bad lines reported."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.doubles import T0, CountingDetector, DownTwiceDetector, health, offered
from watchfloor.core.config import Config
from watchfloor.core.events import events_to_json
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.replay import replay


def test_engine() -> Engine:
    return Engine([CountingDetector(threshold=5), DownTwiceDetector()])


test_engine.__test__ = False  # a factory, not a test


def recorded(tmp_path: Path, extra_lines: list[str] = ()) -> Path:
    events = [offered(T0 + i * 0.5, n=i) for i in range(12)]
    events += [health(T0 + 20, "crm", "down"), health(T0 + 30, "crm", "down"), offered(T0 + 60)]
    text = events_to_json(events).splitlines()
    path = tmp_path / "day.jsonl"
    path.write_text("\n".join(text[:5] + list(extra_lines) + text[5:]) + "\n", encoding="utf-8")
    return path


async def test_replay_writes_every_incident_opened_in_event_order(redis_client, tmp_path):
    out = tmp_path / "incidents.jsonl"
    summary = await replay(
        recorded(tmp_path), out, redis=redis_client, config=Config(), engine=test_engine()
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(i["rule"], i["subject"], i["state"]) for i in lines] == [
        ("surge.test", "presale-chat", "resolved"),
        ("outage.component", "crm", "open"),  # still down at the end of the day
    ]
    assert lines[0]["opened_at"] == T0 + 3
    assert summary.by_kind == {"outage": 1, "surge": 1}
    assert summary.events == 15 and summary.bad_lines == 0


async def test_bad_lines_are_reported_with_their_number_and_skipped(redis_client, tmp_path):
    bad = [
        "{not json",
        json.dumps({"type": "contact", "ts": T0}),
        json.dumps({"type": "nope", "ts": T0, "source": "x"}),
        "   ",
    ]
    summary = await replay(
        recorded(tmp_path, bad),
        tmp_path / "out.jsonl",
        redis=redis_client,
        config=Config(),
        engine=test_engine(),
    )
    assert summary.bad_lines == 3
    assert [e.split(":")[0] for e in summary.errors] == ["line 6", "line 7", "line 8"]
    assert "source is required" in summary.errors[1]
    assert len(summary.incidents) == 2
    assert "3 bad" in summary.text() and "outage 1, surge 1" in summary.text()


async def test_late_lines_in_a_recording_are_counted(redis_client, tmp_path):
    path = tmp_path / "late.jsonl"
    path.write_text(events_to_json([offered(T0 + 30), offered(T0), offered(T0 + 26)]))
    summary = await replay(
        path, tmp_path / "out.jsonl", redis=redis_client, config=Config(), engine=test_engine()
    )
    assert (summary.events, summary.late) == (3, 1)


def test_the_replay_command_over_the_simulators_all_scenario_opens_what_it_should_and_no_more(
    tmp_path, capsys
) -> None:
    """End to end with the real detectors: `watchfloor replay` on `simulate --scenario all`."""
    from watchfloor.cli import main
    from watchfloor.collector.simulator.runner import write_file

    day = tmp_path / "all.jsonl"
    _, expected_path = write_file("all", day)
    out = tmp_path / "incidents.jsonl"
    assert main(["replay", str(day), "--out", str(out), "--data-dir", str(tmp_path)]) == 0
    assert "0 bad, 0 late" in capsys.readouterr().err
    opened = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = json.loads(expected_path.read_text(encoding="utf-8"))["expected"]
    spans = {(e["kind"], e["subject"]): (e["from_ts"], e["to_ts"]) for e in expected}
    got = {(i["kind"], i["subject"]) for i in opened}
    assert got == set(spans), "every expected incident, and nothing else"
    for incident in opened:
        begin, end = spans[(incident["kind"], incident["subject"])]
        assert begin <= incident["opened_at"] <= end, incident["title"]


async def test_a_storm_opens_at_its_first_evidence_though_a_later_post_fires_early(
    redis_client, tmp_path
):
    # The simulated ordinary day: an opinion storm about 云杉优选 from 19:30 (China time),
    # its negative share breached from 19:31, one viral complaint post at 19:33:01 that the
    # one-event rule judges on arrival. The incident must open with the storm's own
    # evidence (the sequential test on its negative mentions: within 19:30-19:31), not at
    # the post.
    from datetime import datetime, timedelta, timezone

    from watchfloor.collector.simulator.runner import write_file
    from watchfloor.monitor.service import build_engine

    source = tmp_path / "evening.jsonl"
    write_file("day-normal", source, seed=1,
               window={"start_s": 18 * 3600, "seconds": 100 * 60})  # fmt: skip
    out = tmp_path / "incidents.jsonl"
    await replay(source, out, redis=redis_client, config=Config(),
                 engine=build_engine(Config()))  # fmt: skip
    storms = [json.loads(line) for line in out.read_text().splitlines()]
    storms = [i for i in storms if i["kind"] == "opinion"]
    assert len(storms) == 1, storms
    china = timezone(timedelta(hours=8))
    opened = datetime.fromtimestamp(storms[0]["opened_at"], china)
    assert (opened.hour, opened.minute) in ((19, 30), (19, 31)), opened
    assert storms[0]["severity"] == "critical"
