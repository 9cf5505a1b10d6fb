"""Supervised child processes for `watchfloor up`.

Each service (collector, monitor, simulator) runs as its own process so the
stack uses every core and a crash in one does not take the others down. A
:class:`Supervisor` starts them in order, restarts one that dies (with a
growing delay, logged), and stops them in reverse order with SIGTERM, waiting
for each to drain before the next. Children get ``PR_SET_PDEATHSIG``: even a
SIGKILLed ``up`` leaves no orphan behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from core.redis_server import die_with_parent

logger = logging.getLogger(__name__)


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    """Restart it when it dies (a one-shot simulator is not restarted)."""
    stop_timeout_s: float = 15.0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            preexec_fn=die_with_parent,
        )
        logger.info("started name=%s pid=%s", self.name, self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        """SIGTERM, wait up to ``stop_timeout_s`` for it to drain, then SIGKILL."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %ss; killing it", self.name, self.stop_timeout_s)
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        logger.info("stopped name=%s code=%s", self.name, self.returncode)


class Supervisor:
    """Starts children in order, restarts the ones that die, stops them in reverse."""

    def __init__(self, children: list[Child], *, max_delay_s: float = 30.0) -> None:
        self.children = children
        self.max_delay_s = max_delay_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_try: dict[str, float] = {}

    def start(self) -> None:
        for child in self.children:
            child.start()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for child in self.children:
                if not child.alive and child.restart and not self._stopping.is_set():
                    self._maybe_restart(child)

    def _maybe_restart(self, child: Child) -> None:
        now = time.monotonic()
        due = self._next_try.get(child.name)
        if due is None:
            delay = min(2.0**child.restarts, self.max_delay_s)
            self._next_try[child.name] = now + delay
            logger.error(
                "%s exited code=%s; restarting in %.0fs (see %s)",
                child.name,
                child.returncode,
                delay,
                child.log_path,
            )
            return
        if now >= due:
            del self._next_try[child.name]
            child.restarts += 1
            child.stop()  # closes the old log handle
            child.start()

    def stop(self) -> None:
        """Stop every child, last started first (the producers before what they feed)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for child in reversed(self.children):
            child.stop()

    def status(self) -> dict[str, str]:
        return {c.name: "running" if c.alive else f"exited ({c.returncode})" for c in self.children}
