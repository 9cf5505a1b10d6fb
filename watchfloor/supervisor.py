"""Supervised child processes for `watchfloor up`.

Each service (collector, monitor, simulator) runs as its own process so the
stack uses every core and a crash in one does not take the others down. A
:class:`Supervisor` starts them in order, restarts one that dies, and stops them
in reverse order with SIGTERM, waiting for each to drain before the next.
Children get ``PR_SET_PDEATHSIG``: even a SIGKILLed ``up`` leaves no orphan.

Restarts follow :class:`RestartPolicy`: the delay doubles (1, 2, 4 ... s, at most
``max_delay_s``) while a child keeps dying, and falls back to 1 s once it has
run ``healthy_after_s``: one crash after a healthy day costs a second of intake,
not the maximum delay. A child that exits ``loop_exits`` times within
``loop_window_s`` is in a *crash loop*: that is reported once (an ERROR with its
last output lines, and ``on_report`` for the terminal) and shown in
:meth:`Supervisor.status` (``up`` publishes it for ``/healthz`` and the console)
until the child has run healthy again.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from watchfloor.core.redis_server import die_with_parent

logger = logging.getLogger(__name__)

OUTPUT_LINES = 12
"""Last output lines of a crash-looping child quoted in the report."""
OUTPUT_TAIL_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When to restart a child that died, and when its deaths are a crash loop."""

    max_delay_s: float = 30.0
    """Longest wait before a restart (the delay doubles from 1 s up to this)."""
    healthy_after_s: float = 30.0
    """A child that ran this long is healthy: its next restart waits 1 s again."""
    loop_exits: int = 5
    """This many exits ..."""
    loop_window_s: float = 120.0
    """... within this many seconds is a crash loop, reported (not slept through)."""

    def delay(self, restarts: int) -> float:
        return float(min(2.0 ** min(restarts, 32), self.max_delay_s))


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
    """Restarts since it last ran healthy (sets the next delay)."""
    started_at: float = 0.0
    """``time.monotonic()`` of the last start."""
    exits: collections.deque[float] = field(default_factory=collections.deque)
    """``time.monotonic()`` of its recent exits (the crash-loop window)."""
    crash_loop: bool = False
    last_output: list[str] = field(default_factory=list)
    _log: IO[bytes] | None = None
    _log_offset: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self._log.tell()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            preexec_fn=die_with_parent,
        )
        self.started_at = time.monotonic()
        logger.info("started name=%s pid=%s", self.name, self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def output_tail(self, lines: int = OUTPUT_LINES) -> list[str]:
        """The last ``lines`` lines this run wrote (stdout and stderr share the log)."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(self._log_offset, size - OUTPUT_TAIL_BYTES))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]

    def signal(self, signum: int) -> bool:
        """Send ``signum`` if it runs; whether it was sent."""
        if not self.alive:
            return False
        assert self.process is not None
        self.process.send_signal(signum)
        return True

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


Report = Callable[[str], None]
Publish = Callable[[dict[str, Any]], None]


class Supervisor:
    """Starts children in order, restarts the ones that die, stops them in reverse.

    ``on_report(line)`` is called (from the watch thread) when a child enters or
    leaves a crash loop; ``publish(status)`` with :meth:`status` on every change
    and every ``publish_every_s``.
    """

    def __init__(
        self,
        children: list[Child],
        *,
        policy: RestartPolicy | None = None,
        on_report: Report | None = None,
        publish: Publish | None = None,
        poll_s: float = 0.5,
        publish_every_s: float = 5.0,
    ) -> None:
        self.children = children
        self.policy = policy or RestartPolicy()
        self.on_report = on_report
        self.publish = publish
        self.poll_s = poll_s
        self.publish_every_s = publish_every_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_try: dict[str, float] = {}
        self._published = 0.0

    def start(self) -> None:
        for child in self.children:
            child.start()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            changed = False
            for child in self.children:
                if self._stopping.is_set():
                    return
                if child.alive:
                    changed |= self._note_healthy(child)
                elif child.restart:
                    changed |= self._maybe_restart(child)
            if changed or time.monotonic() - self._published >= self.publish_every_s:
                self._publish()

    def _note_healthy(self, child: Child) -> bool:
        """Reset the delay of a child that has run long enough; True if its state changed."""
        if time.monotonic() - child.started_at < self.policy.healthy_after_s:
            return False
        child.restarts = 0
        if not child.crash_loop:
            return False
        child.crash_loop = False
        self._report(
            logging.WARNING,
            f"{child.name} recovered: running for {self.policy.healthy_after_s:.0f} s "
            "after a crash loop",
        )
        return True

    def _maybe_restart(self, child: Child) -> bool:
        now = time.monotonic()
        due = self._next_try.get(child.name)
        if due is None:
            self._note_exit(child, now)
            return True
        if now >= due:
            del self._next_try[child.name]
            child.restarts += 1
            child.stop()  # closes the old log handle
            child.start()
            return True
        return False

    def _note_exit(self, child: Child, now: float) -> None:
        if now - child.started_at >= self.policy.healthy_after_s:
            child.restarts = 0  # it ran healthy: this crash is not part of a loop
        child.exits.append(now)
        while child.exits and now - child.exits[0] > self.policy.loop_window_s:
            child.exits.popleft()
        delay = self.policy.delay(child.restarts)
        self._next_try[child.name] = now + delay
        logger.error(
            "%s exited code=%s; restarting in %.0fs (see %s)",
            child.name,
            child.returncode,
            delay,
            child.log_path,
        )
        if not child.crash_loop and len(child.exits) >= self.policy.loop_exits:
            child.crash_loop = True
            child.last_output = child.output_tail()
            self._report(logging.ERROR, self._loop_message(child, delay))

    def _loop_message(self, child: Child, delay: float) -> str:
        window = self.policy.loop_window_s
        head = (
            f"{child.name} is in a crash loop: {len(child.exits)} exits within {window:.0f} s "
            f"(last code {child.returncode}); next restart in {delay:.0f} s; see {child.log_path}"
        )
        quoted = [f"  | {line}" for line in child.last_output] or ["  | (no output)"]
        return "\n".join([head, f"last output of {child.name}:", *quoted])

    def _report(self, level: int, message: str) -> None:
        logger.log(level, "%s", message)
        if self.on_report is not None:
            try:
                self.on_report(message)
            except Exception:  # a broken terminal must not stop the restarts
                logger.exception("crash-loop report failed")

    def _publish(self) -> None:
        self._published = time.monotonic()
        if self.publish is None:
            return
        try:
            self.publish(self.status())
        except Exception as exc:  # Redis down: the log and the terminal still say it
            logger.debug("supervisor status not published: %s", exc)

    def signal(self, name: str, signum: int) -> bool:
        """Send ``signum`` to the child ``name``; whether it was running."""
        child = next((c for c in self.children if c.name == name), None)
        return child is not None and child.signal(signum)

    def stop(self) -> None:
        """Stop every child, last started first (the producers before what they feed)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for child in reversed(self.children):
            child.stop()

    def status(self) -> dict[str, Any]:
        """``{"updated_at", "pid", "children": {name: {...}}}`` (what ``wf:supervisor`` holds)."""
        return {
            "updated_at": time.time(),
            "pid": os.getpid(),
            "children": {c.name: self._child_status(c) for c in self.children},
        }

    def _child_status(self, child: Child) -> dict[str, Any]:
        if child.alive:
            state = "crash-loop" if child.crash_loop else "running"
        elif self._stopping.is_set() or not child.restart:
            state = "stopped" if self._stopping.is_set() else "exited"
        else:
            state = "crash-loop" if child.crash_loop else "restarting"
        return {
            "state": state,
            "pid": child.process.pid if child.alive and child.process else None,
            "restarts": child.restarts,
            "recent_exits": len(child.exits),
            "last_code": child.returncode,
            "last_output": child.last_output if child.crash_loop else [],
        }
