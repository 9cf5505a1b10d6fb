"""Benchmarks: each module is a script printing figures (docs/BENCHMARKS.md);
``python -m bench all`` runs them all and prints one summary table.

This module only holds what the scripts share for reporting (standard library only): the
machine's description and the replacement of a marked section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """``CPU model, nproc N, M GiB, python X, load L``: what a figure was measured on."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu_model()}, nproc {os.cpu_count()}, {memory:.0f} GiB, "
        f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )


def replace_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> None:
    """Put ``text`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``
    (the markers stay, so the next run replaces it again); appended when they are missing."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = path.read_text(encoding="utf-8")
    block = f"{start}\n{text.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(doc):
        doc = pattern.sub(lambda _m: block, doc, count=1)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc, encoding="utf-8")
