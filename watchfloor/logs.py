"""The one logging set-up of every ``watchfloor`` process: one format, to stderr or a file.

Library packages only call ``logging.getLogger(__name__)``; the command that owns the
process decides here where records go (the TUI owns the terminal, so the console and
``up`` log to a file).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Final

FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr(level: int) -> None:
    """Records at ``level`` and above go to stderr."""
    # basicConfig leaves a root logger that already has handlers alone, so a command run
    # in-process (pytest's capture, an embedding program) keeps its own handlers
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr)


def log_to_file(path: Path, *, level: int, stderr_level: int | None = None) -> None:
    """Every record at ``level`` goes to ``path`` only (and those at ``stderr_level`` also
    to stderr): the handlers set up so far are replaced."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    if stderr_level is not None:
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(stderr_level)
        root.addHandler(err)
