"""The playbook library: the built-in playbooks plus the operator's own directory.

Built-in playbooks live in ``playbooks/library/*.toml``; ``config.playbooks.library``
names a directory of extra ones (a file there with the same id replaces the
built-in one). :meth:`Library.match` picks the playbook an incident starts:
one whose rules name the incident's rule beats one that only names its kind.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from watchfloor.core.incidents import severity_rank
from watchfloor.playbooks.errors import PlaybookInvalid, UnknownPlaybook
from watchfloor.playbooks.schema import CheckError, Playbook, check_file, parse_file

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "library"


def library_files(extra_dir: str | Path | None = None) -> list[Path]:
    """Every playbook file: the built-in ones, then the extra directory's."""
    files = sorted(BUILTIN_DIR.glob("*.toml"))
    if extra_dir:
        files += sorted(Path(extra_dir).glob("*.toml"))
    return files


def check_library(
    extra_dir: str | Path | None = None, targets: Iterable[str] | None = None
) -> list[CheckError]:
    errors: list[CheckError] = []
    for path in library_files(extra_dir):
        errors += check_file(path, targets)
    return errors


class Library:
    """Playbooks by id."""

    def __init__(self, playbooks: Iterable[Playbook]) -> None:
        self.playbooks: dict[str, Playbook] = {}
        for playbook in playbooks:
            self.playbooks[playbook.id] = playbook

    @classmethod
    def load(cls, extra_dir: str | Path | None = None, *, strict: bool = False) -> Library:
        """Load every valid playbook; an invalid one is logged and left out (or raised)."""
        loaded = []
        for path in library_files(extra_dir):
            try:
                loaded.append(parse_file(path))
            except PlaybookInvalid as exc:
                if strict:
                    raise
                logger.error(
                    "playbook left out file=%s errors=%s",
                    path,
                    "; ".join(str(e) for e in exc.errors),
                )
        return cls(loaded)

    @classmethod
    def from_config(cls, config: Any) -> Library:
        return cls.load(config.playbooks.library)

    def get(self, playbook_id: str) -> Playbook:
        try:
            return self.playbooks[playbook_id]
        except KeyError:
            raise UnknownPlaybook(f"no playbook {playbook_id!r}") from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.playbooks.values(), key=lambda p: p.id))

    def __len__(self) -> int:
        return len(self.playbooks)

    def match(self, kind: str, rule: str, severity: str, subject: str = "") -> Playbook | None:
        """The playbook an incident of (kind, rule, severity, subject) starts, or None.

        The most specific wins (a rule match beats a subject match beats a kind
        match); ties go to the smallest id, so the choice never depends on file order.
        """
        ranked = sorted(
            (-_match_points(p, kind, rule, severity, subject), p.id, p)
            for p in self.playbooks.values()
        )
        if ranked and ranked[0][0] < 0:
            return ranked[0][2]
        return None


def _match_points(playbook: Playbook, kind: str, rule: str, severity: str, subject: str) -> int:
    """0 when the playbook does not start for this incident; higher is more specific."""
    trigger = playbook.trigger
    if trigger.manual_only:
        return 0
    if severity_rank(severity) < severity_rank(trigger.min_severity):
        return 0
    if trigger.rules and any(fnmatch.fnmatchcase(rule, r) for r in trigger.rules):
        return 3
    if not trigger.kinds or kind not in trigger.kinds:
        return 0
    if trigger.subjects:
        return 2 if any(fnmatch.fnmatchcase(subject, s) for s in trigger.subjects) else 0
    return 1
