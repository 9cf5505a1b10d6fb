"""The drift test: the vocabulary lives in core/vocabulary.py only.

Copies drift (the social channel's answer threshold had become 1800 s on the board and
3600 s in the rules), so any literal tuple, list, set or dict (keys) in our packages that
reproduces one of the vocabulary's word sets fails here, naming file and line; and the
channel SLA figures that live outside Python (the rules file) or are served (the board,
the console's fallback) must equal the vocabulary's.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchfloor.core import vocabulary
from watchfloor.core.vocabulary import CHANNEL_SLA, CHANNELS, SLA_ANSWER_S

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "collector", "monitor", "playbooks", "security", "api", "console", "watchfloor")
VOCABULARY_FILE = ROOT / "core" / "vocabulary.py"
MIN_MEMBERS = 3


def _vocabulary_sets() -> dict[frozenset[str], str]:
    """Every word set of the vocabulary (>= 3 members) -> its name."""
    found: dict[frozenset[str], str] = {}
    for name, value in vars(vocabulary).items():
        if not name.isupper() or not isinstance(value, tuple | frozenset):
            continue
        if len(value) >= MIN_MEMBERS and all(isinstance(v, str) for v in value):
            found.setdefault(frozenset(value), name)
    return found


def _string_members(node: ast.AST) -> list[str] | None:
    """The members of a literal collection of strings (dict: its keys), else None."""
    if isinstance(node, ast.Dict):
        elements: list[ast.expr | None] = list(node.keys)
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        elements = list(node.elts)
    else:
        return None
    words = [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return words if len(words) == len(elements) else None


def _source_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != VOCABULARY_FILE:
                yield path


def find_copies(
    sets: dict[frozenset[str], str], files: Iterator[Path], root: Path = ROOT
) -> list[str]:
    """``file:line: literal copy of NAME`` for each literal that reproduces a vocabulary set."""
    copies = []
    for path in files:
        found: list[tuple[int, str]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            members = _string_members(node)
            if members is None or len(members) < MIN_MEMBERS or not isinstance(node, ast.expr):
                continue
            # "all" beside a set of states is the same copy (a filter's choices)
            name = sets.get(frozenset(members)) or sets.get(frozenset(members) - {"all"})
            if name is not None:
                where = path.relative_to(root)
                found.append((node.lineno, f"{where}:{node.lineno}: literal copy of {name}"))
        copies += [text for _, text in sorted(found)]
    return copies


def test_the_vocabulary_has_the_sets_the_drift_test_looks_for() -> None:
    names = set(_vocabulary_sets().values())
    assert {"SEVERITIES", "INCIDENT_KINDS", "CHANNELS", "RUN_STATES", "STEP_STATES"} <= names
    assert {"CONTACT_ACTIONS", "HEALTH_STATUSES", "DIRECTIONS", "ACCESS_ACTIONS"} <= names


def test_no_literal_copy_of_the_vocabulary_in_our_packages() -> None:
    copies = find_copies(_vocabulary_sets(), _source_files())
    assert copies == [], "import these from core.vocabulary instead:\n" + "\n".join(copies)


def test_the_drift_test_names_file_and_line_of_a_copy(tmp_path: Path) -> None:
    module = tmp_path / "copy.py"
    module.write_text(
        'X = ("info", "minor")\n'
        'LEVELS = {"critical": 3, "major": 2, "minor": 1, "info": 0}\n'
        'Channel = Literal["phone", "chat", "email", "social", "ticket"]\n'
        'CHOICES = ("open", "acknowledged", "resolved", "all")\n'
    )
    copies = find_copies(_vocabulary_sets(), iter([module]), root=tmp_path)
    assert copies == [
        "copy.py:2: literal copy of SEVERITIES",
        "copy.py:3: literal copy of CHANNELS",
        "copy.py:4: literal copy of INCIDENT_STATES",
    ]


def test_the_rules_file_carries_the_vocabulary_s_channel_figures() -> None:
    rules = tomllib.loads((ROOT / "monitor" / "rules" / "default.toml").read_text("utf-8"))
    channels = rules["sla"]["channels"]
    assert sorted(channels) == sorted(CHANNELS)
    for name, sla in CHANNEL_SLA.items():
        assert channels[name]["longest_wait_s"] == sla.answer_s, name
        assert channels[name]["aht_s"] == sla.aht_s, name
        assert channels[name].get("stale_s") == sla.stale_s, name


def test_the_board_and_the_console_use_the_vocabulary_s_thresholds() -> None:
    from watchfloor.console.state import DEFAULT_SLA_S
    from watchfloor.monitor.board import SLA_THRESHOLDS_S

    assert dict(SLA_THRESHOLDS_S) == dict(SLA_ANSWER_S)
    assert dict(DEFAULT_SLA_S) == dict(SLA_ANSWER_S)


@pytest.mark.parametrize("name", sorted(CHANNEL_SLA))
def test_each_channel_names_where_its_figure_comes_from(name: str) -> None:
    sla = CHANNEL_SLA[name]
    assert sla.name == name
    assert sla.answer_s > 0 and sla.source


def test_each_kind_s_default_playbook_is_in_the_library() -> None:
    library = ROOT / "playbooks" / "library"
    assert sorted(vocabulary.DEFAULT_PLAYBOOKS) == sorted(vocabulary.INCIDENT_KINDS)
    for kind, playbook in vocabulary.DEFAULT_PLAYBOOKS.items():
        assert (library / f"{playbook}.toml").is_file(), kind
