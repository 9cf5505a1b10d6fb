"""The code base stays typed and linted: mypy on the packages, ruff lint and format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_the_packages_type_check(tmp_path: Path) -> None:
    result = run("mypy", "--cache-dir", str(tmp_path / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing_to_lint_or_reformat() -> None:
    lint = run("ruff", "check", "--no-cache", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    form = run("ruff", "format", "--no-cache", "--check", ".")
    assert form.returncode == 0, form.stdout + form.stderr
