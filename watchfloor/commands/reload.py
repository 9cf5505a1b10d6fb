"""`watchfloor reload`: apply webhooks, rules and playbooks to the running stack.

Finds the running ``watchfloor up`` of the data directory (:mod:`watchfloor.run_files`),
writes who asks into ``run/reload-request.json``, sends SIGHUP, and waits for
the monitor's answer in ``run/reload-result.json``: what changed, what needs a
restart, or why the new settings were refused (the running ones are then kept).
Exit 0 when applied, 1 when refused or when no answer came.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.errors import CommandError
from watchfloor.run_files import run_dir, running_stack
from watchfloor.settings_reload import LIVE_SETTINGS, REQUEST_FILE, RESULT_FILE

WAIT_S = 30.0


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "reload",
        help="apply webhooks, rules and playbooks to the running stack",
        description="Send SIGHUP to the running `watchfloor up` of the data directory. The "
        "monitor loads and checks the settings first: a bad file is refused with its error "
        "and the running settings are kept. Live: " + ", ".join(LIVE_SETTINGS) + "; any "
        "other changed setting is named as needing a restart. Audited as config.reloaded.",
    )
    add_config_options(parser)
    parser.add_argument(
        "--wait", type=float, default=WAIT_S, help=f"seconds to wait for the answer ({WAIT_S:.0f})"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    pid = running_stack(config)
    if pid is None:
        raise CommandError(
            f"no running stack in {config.data_path.resolve()} (no live run/up.pid); "
            "`watchfloor up` reads the settings when it starts"
        )
    request_id = uuid.uuid4().hex
    directory = run_dir(config)
    _write_request(directory, request_id)
    os.kill(pid, signal.SIGHUP)
    result = _wait_result(directory / RESULT_FILE, request_id, args.wait)
    if result is None:
        raise CommandError(
            f"sent SIGHUP to pid {pid}, no answer within {args.wait:.0f} s; "
            f"see {config.path('logs', 'monitor.log')}"
        )
    print(describe(result))
    return 0 if result.get("ok") else 1


def _write_request(directory: Path, request_id: str) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    request = {"id": request_id, "by": _who(), "pid": os.getpid(), "at": time.time()}
    temporary = directory / (REQUEST_FILE + ".tmp")
    temporary.write_text(json.dumps(request), encoding="utf-8")
    temporary.replace(directory / REQUEST_FILE)


def _who() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"os:uid-{os.getuid()}"


def _wait_result(path: Path, request_id: str, wait_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None
        if isinstance(result, dict) and result.get("request") == request_id:
            return result
        time.sleep(0.1)
    return None


def describe(result: dict[str, Any]) -> str:
    """The answer in a few lines: refused with each error, or applied with what changed."""
    if not result.get("ok"):
        lines = ["reload refused; the running settings are kept:"]
        return "\n".join(lines + [f"  {error}" for error in result.get("errors", [])])
    changed: dict[str, Any] = result.get("changed") or {}
    lines = ["reloaded" + ("" if changed else ": nothing changed")]
    for section, what in sorted(changed.items()):
        if isinstance(what, dict):
            parts = [f"{kind} {', '.join(names)}" for kind, names in sorted(what.items())]
            lines.append(f"  {section}: {'; '.join(parts)}")
        else:
            lines.append(f"  {section}: {', '.join(what)}")
    restart = result.get("needs_restart") or []
    if restart:
        lines.append(f"  needs a restart of `watchfloor up` to apply: {', '.join(restart)}")
    return "\n".join(lines)
