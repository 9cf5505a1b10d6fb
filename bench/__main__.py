"""``python -m bench all [--quick] [--only a,b] [--no-write]``: every benchmark in one run.

Runs each script of this folder as its own process, one after the other (so they do not
compete for the cores), shows its output as it comes, picks its headline figures from what
it printed, and ends with one table (machine, date, command, figures), which it also writes
between the ``bench-all`` markers of docs/BENCHMARKS.md (``--no-write``: print only). A
script that fails or prints nothing recognisable is a row saying so; the others still run.
``--quick`` runs smaller sizes (6 minutes on a busy 2-core machine; 25 without it).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import machine, replace_section

ROOT = Path(__file__).resolve().parent.parent
Figures = list[tuple[str, str]]


@dataclass(frozen=True)
class Bench:
    name: str
    argv: tuple[str, ...]
    quick: tuple[str, ...]
    pick: Callable[[str], Figures]
    timeout_s: float = 1800.0
    write: tuple[str, ...] = ()
    """Arguments that make the script write its own section of docs/BENCHMARKS.md."""


def lines_matching(*patterns: str) -> Callable[[str], Figures]:
    """Each pattern's first match: a figure named by the pattern's ``label`` group (or its
    ``name``) with the value in its ``value`` group."""

    def pick(out: str) -> Figures:
        figures: Figures = []
        for pattern in patterns:
            for match in re.finditer(pattern, out, re.MULTILINE):
                label = match.groupdict().get("label") or ""
                figures.append((" ".join(label.split()), match.group("value").strip()))
                break
        return figures

    return pick


def console_figures(out: str) -> Figures:
    starts = [m.start() for m in re.finditer(r"^\{", out, re.MULTILINE)]
    if not starts:
        return []
    data = json.loads(out[starts[-1] :])
    return [
        ("change on screen p50 / p99",
         f"{data['change_on_screen_p50_ms']} / {data['change_on_screen_p99_ms']} ms"),
        ("console CPU, share of one core", f"{data['console_cpu_share'] * 100:.0f} %"),
        ("key press to repaint p50 / p90",
         f"{data['key_to_repaint_p50_ms']} / {data['key_to_repaint_p90_ms']} ms"),
    ]  # fmt: skip


def peers_figures(out: str) -> Figures:
    rows = re.findall(r"^\| (signal|…|ingest|storm)([^|]*)\| ([^|]+)\| ([^|]+)\| ([^|]+)\|$",
                      out, re.MULTILINE)  # fmt: skip
    return [
        (f"{head}{rest}".strip(), f"Watchfloor {wf.strip()}; Alertmanager 0s {am0.strip()}"
                                  + ("" if am30.strip() == "(same API)" else
                                     f"; 30s {am30.strip()}"))
        for head, rest, wf, am0, am30 in rows
    ]  # fmt: skip


RATE = r"(?P<value>[\d,]+ \w+/s)"
BENCHES = (
    Bench("codec", ("bench/codec.py",), ("bench/codec.py", "--batches", "10"),
          lines_matching(rf"^(?P<label>validate, fast path)[^:]*:\s+{RATE}",
                         rf"^(?P<label>fast validate \+ encode):\s+{RATE}",
                         rf"^(?P<label>raw Redis XADD, pipelined, no AOF):\s+{RATE}")),
    Bench("ingest", ("bench/ingest.py", "--batches", "150"), ("bench/ingest.py", "--batches", "30"),
          lines_matching(rf"^(?P<label>HTTP msgpack, batches of 1000)\s+{RATE}",
                         rf"^(?P<label>WebSocket msgpack, batches of 1000)\s+{RATE}",
                         rf"^(?P<label>raw Redis XADD[^\d]*?)\s+{RATE}")),
    Bench("engine", ("bench/engine.py", "--events", "300000"),
          ("bench/engine.py", "--events", "100000"),
          lines_matching(rf"^(?P<label>engine \+ default rules[^:]*):\s+{RATE}",
                         rf"^(?P<label>monitor service on Redis)[^:]*:\s*{RATE}")),
    Bench("e2e", ("bench/e2e.py", "--probes", "30"), ("bench/e2e.py", "--probes", "10"),
          lines_matching(r"^(?P<label>live) : (?P<value>p50 \S+ s\s+p99 \S+ s)",
                         r"^(?P<label>rest) : (?P<value>p50 \S+ s\s+p99 \S+ s)",
                         r"^(?P<label>background load): (?P<value>.*)$")),
    Bench("console", ("bench/console.py",), ("bench/console.py", "--seconds", "8"),
          console_figures),
    Bench("audit", ("bench/audit.py",), ("bench/audit.py", "--n", "1000", "--writers", "1"),
          lines_matching(rf"^(?P<label>append\s+1 writer)\S*\s+\d+ records\s+{RATE}",
                         rf"^(?P<label>verify)\s+\d+ records \+ 1 checkpoint\s+{RATE}")),
    Bench("crypto", ("bench/crypto.py",), ("bench/crypto.py", "--n", "5000"),
          lines_matching(r"^(?P<label>encrypt_event)\s+(?P<value>\S+ µs/event)",
                         r"^=> (?P<value>[\d,]+ agent.message events/s) "
                         r"on (?P<label>one core for encryption)")),
    Bench("fsync", ("-m", "bench.fsync"), ("-m", "bench.fsync", "--seconds", "1", "--rounds", "1"),
          lines_matching(rf"^(?P<label>always\s+1 writer, batches of 1000)\s+{RATE}",
                         rf"^(?P<label>everysec\s+1 writer, batches of 1000)\s+{RATE}")),
    Bench("peers", ("-m", "bench.peers"), ("-m", "bench.peers", "--quick"), peers_figures,
          timeout_s=3600.0, write=("--write",)),
)  # fmt: skip


def run_one(bench: Bench, quick: bool, write: bool, logs: Path) -> tuple[Figures, str, float]:
    """Run one script, echoing its output; its figures, a status word and the seconds taken."""
    argv = [
        sys.executable,
        *(bench.quick if quick else bench.argv),
        *(bench.write if write else ()),
    ]
    print(f"\n=== {bench.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    out: list[str] = []
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=_env()) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            out.append(line)
            if time.monotonic() - started > bench.timeout_s:
                proc.kill()
                break
        code = proc.wait()
    took = time.monotonic() - started
    text = "".join(out)
    (logs / f"{bench.name}.log").write_text(text, encoding="utf-8")
    try:
        figures = bench.pick(text)
    except (ValueError, KeyError) as exc:
        figures = [("output not understood", type(exc).__name__)]
    if code != 0:
        last = text.strip().splitlines()[-1:] or [""]
        return figures, f"failed (exit {code}): {last[0][:120]}", took
    return figures, "ok" if figures else "no figures found in its output", took


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def summary(results: list[tuple[Bench, Figures, str, float]], header: str) -> str:
    lines = [header, "", "| bench | figure | value |", "| --- | --- | --- |"]
    for bench, figures, status, took in results:
        if status != "ok":
            lines.append(f"| {bench.name} | {status} ({took:.0f} s) | |")
        for label, value in figures:
            lines.append(f"| {bench.name} | {label} | {value} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("what", choices=["all"], help="all: every benchmark")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument(
        "--only", help="comma-separated names: " + ", ".join(b.name for b in BENCHES)
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    where = machine()
    command = "python -m bench all" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    results = []
    with tempfile.TemporaryDirectory(prefix="wf-bench-all-") as tmp:
        for bench in chosen:
            figures, status, took = run_one(bench, args.quick, not args.no_write, Path(tmp))
            results.append((bench, figures, status, took))
    total = sum(r[3] for r in results)
    header = (f"Command: `{command}` — {date}, {total:.0f} s in all; machine: {where} "
              "(at the start).")  # fmt: skip
    text = summary(results, header)
    print("\n" + text)
    if not args.no_write:
        replace_section("bench-all", text)
        print("\nwritten to docs/BENCHMARKS.md (bench-all section)")
    return 0 if all(r[2] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
