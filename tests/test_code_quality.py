"""The code base stays typed and linted: mypy on the packages, ruff lint and format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("core", "collector", "monitor", "api", "playbooks", "security", "console")
"""Folders installed as ``watchfloor.<name>`` (pyproject's package-dir)."""


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def installed_layout(where: Path) -> Path:
    """The ``watchfloor`` package as installed (top-level folders inside it), as links."""
    package = where / "watchfloor"
    package.mkdir(parents=True)
    for entry in (ROOT / "watchfloor").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in TOP_LEVEL:
        (package / name).symlink_to(ROOT / name)
    return where


def test_the_packages_type_check(tmp_path: Path) -> None:
    src = installed_layout(tmp_path / "src")
    result = run("mypy", "--config-file", str(ROOT / "pyproject.toml"),
                 "--cache-dir", str(tmp_path / "mypy"), cwd=src)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout and "source files" in result.stdout, result.stdout


def test_ruff_finds_nothing_to_lint_or_reformat() -> None:
    lint = run("ruff", "check", "--no-cache", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    form = run("ruff", "format", "--no-cache", "--check", ".")
    assert form.returncode == 0, form.stdout + form.stderr
