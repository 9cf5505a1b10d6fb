"""The detector registry: settings declared once; default.toml, docs and checks derive from it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from watchfloor.core.events import Event
from watchfloor.monitor.detector_set import build_detectors
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.registry import (
    _SPECS,
    DetectorSpec,
    RegistryError,
    bounds_of,
    register,
    setting,
    specs,
)
from watchfloor.monitor.detectors.rendering import render_default_toml, update_doc
from watchfloor.monitor.drive import drive
from watchfloor.monitor.rules import DEFAULT_RULES, RULES_DOC, Rules, check_rules, load_rules

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_default_toml_is_the_registry_s() -> None:
    assert DEFAULT_RULES.read_text("utf-8") == render_default_toml(), (
        "monitor/rules/default.toml differs from the registry: "
        "run python -m watchfloor.monitor.rules --write-defaults"
    )


def test_the_docs_settings_tables_are_the_registry_s() -> None:
    text = RULES_DOC.read_text("utf-8")
    for spec in specs():
        assert f"<!-- settings:{spec.section} -->" in text, spec.section
    assert text == update_doc(text), (
        "docs/rules.md's settings tables differ: "
        "run python -m watchfloor.monitor.rules --write-docs"
    )


def test_every_setting_has_a_doc_and_the_defaults_load_as_declared() -> None:
    rules = load_rules()
    for spec in specs():
        declared = spec.params()
        assert rules.sections[spec.section].base == declared, spec.section
        for f in spec.fields():
            assert bounds_of(f).doc.strip(), f"{spec.section}.{f.name} has no doc"


def test_the_write_defaults_command_writes_what_the_registry_renders(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "watchfloor.monitor.rules", "--bogus"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--write-defaults" in done.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '[leak]\nmin_confidence = "sure"',
            "leak.min_confidence: must be one of low, medium, high",
        ),
        ("[leak]\nutc_offset_h = 20", "leak.utc_offset_h: must lie between -14 and 14, got 20"),
        ("[outage]\nsilent_window_s = 0", "outage.silent_window_s: must be above 0"),
        ("[outage.sources.crm]\nheartbeat_min_beats = -3", "must not be negative, got -3"),
        ('[opinion.topics.x]\ncomplaint_words = "scam"', "must be a list of strings"),
    ],
)
def test_declared_bounds_are_checked_by_key(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    errors = check_rules(path)
    assert len(errors) == 1
    assert error in errors[0]


# --- a sixth detector is one module -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToyRules:
    enabled: bool = setting(True, "run this detector")
    limit: int = setting(3, "events of one queue that make it noisy", above_zero=True)
    for_s: float = setting(0.0, "pending")
    keep_firing_for_s: float = setting(0.0, "resolving")


class ToyDetector:
    name: ClassVar[str] = "toy"
    event_types: ClassVar[frozenset[str]] = frozenset({"contact"})

    def __init__(self, rules: Rules) -> None:
        self.scoped = rules.section(TOY)
        self.counts: dict[str, int] = {}

    def observe(self, event: Event) -> None:
        queue = str(getattr(event, "queue", ""))
        self.counts[queue] = self.counts.get(queue, 0) + 1

    def evaluate(self, watermark: float) -> Iterable[Signal]:
        for queue, count in self.counts.items():
            if count >= self.scoped.get(queue=queue).limit:
                yield Signal("toy.noisy", "surge", queue, "minor", f"{queue} is noisy")

    def snapshot(self) -> dict[str, Any]:
        return {"counts": self.counts}

    def restore(self, state: dict[str, Any]) -> None:
        self.counts = dict(state["counts"])


TOY: DetectorSpec[ToyRules] = DetectorSpec(
    "toy", "surge", ToyRules, ("queues",), ToyDetector, 99, "a toy detector"
)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> DetectorSpec[ToyRules]:
    specs()  # the real detectors first, then the toy one beside them
    monkeypatch.setitem(_SPECS, "toy", TOY)
    return TOY


def test_a_registered_detector_gets_rules_checks_defaults_docs_and_a_build(
    toy: DetectorSpec[ToyRules], tmp_path: Path
) -> None:
    rules = load_rules(text='[toy.queues."vip"]\nlimit = 1')
    assert rules.section(toy).get(queue="vip").limit == 1
    assert rules.toy.base.limit == 3
    assert "[toy]\nenabled = true" in render_default_toml()
    assert "| `limit` | `3` |" in update_doc("<!-- settings:toy -->\n<!-- /settings:toy -->")
    path = tmp_path / "rules.toml"
    path.write_text("[toy]\nlimits = 2\nlimit = 0", encoding="utf-8")
    assert check_rules(path) == ["toy.limits: unknown key", "toy.limit: must be above 0"]
    detectors = build_detectors(rules)
    assert [d.name for d in detectors][-1] == "toy"
    from watchfloor.core.events import Contact

    events = [
        Contact(
            ts=1000.0 + i,
            source="s",
            contact_id=f"c{i}",
            queue="vip",
            channel="chat",
            action="offered",
        )
        for i in range(2)
    ]
    trace = drive(detectors[-1], events, until=1003.0)
    assert trace.fired() == [("toy.noisy", "vip", "minor")]


def test_a_detector_of_an_unknown_kind_is_refused_when_it_registers() -> None:
    bad = dataclasses.replace(TOY, kind="toys")
    with pytest.raises(RegistryError, match="unknown incident kind 'toys'"):
        register(bad)


def test_a_setting_without_its_declaration_is_refused() -> None:
    @dataclass(frozen=True)
    class Bare:
        enabled: bool = True
        for_s: float = 0.0
        keep_firing_for_s: float = 0.0

    with pytest.raises(RegistryError, match="enabled: declared without setting"):
        register(DetectorSpec("bare", "surge", Bare, (), ToyDetector, 99, "bare"))
