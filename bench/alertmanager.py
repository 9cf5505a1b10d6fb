"""Prometheus Alertmanager for the peers benchmark: find or fetch the binary, start it on loopback.

``find_or_fetch()`` looks for ``alertmanager`` / ``prometheus-alertmanager`` on ``PATH``, then
in a cache directory (``~/.cache/watchfloor/alertmanager/``), and otherwise fills that cache
from Debian's ``prometheus-alertmanager`` package with ``apt-get download`` and ``dpkg -x``
(neither needs root). Debian's build reads its notification templates from the absolute
directory ``/usr/share/prometheus/alertmanager``, which only exists when the package is
installed; the cached copy of the binary therefore has that one string replaced by the
same-length relative path ``usr//share/prometheus/alertmanager`` and is started from the
extraction root, where the templates are. An installed package is used as it is.

``start(config_yaml, port)`` runs it on 127.0.0.1 with gossip off (``--cluster.listen-address=``)
and its storage in a temporary directory, and returns once ``/-/ready`` answers 200.

Run ``python -m bench.alertmanager`` to fetch it and print its path and version.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

PACKAGE = "prometheus-alertmanager"
NAMES = ("alertmanager", PACKAGE)
TEMPLATES = "usr/share/prometheus/alertmanager"
ABSOLUTE = b"/usr/share/prometheus/alertmanager"
RELATIVE = b"usr//share/prometheus/alertmanager"
INSTALL_HINT = (
    "install it with `apt-get install prometheus-alertmanager` (Debian/Ubuntu), or put an "
    "upstream `alertmanager` binary (https://prometheus.io/download/) on PATH"
)


class AlertmanagerError(RuntimeError):
    """Alertmanager could not be found, fetched or started."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "watchfloor" / "alertmanager"


def cached_binary(cache: Path | None = None) -> Path:
    """Where the fetched, relocated binary lives (inside the extracted package)."""
    return (cache or cache_dir()) / "root" / "usr" / "bin" / "alertmanager"


def find_or_fetch(cache: Path | None = None) -> Path:
    """An ``alertmanager`` binary: from PATH, the cache, or Debian's package fetched into it."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    binary = cached_binary(cache)
    if binary.is_file():
        return binary
    return fetch(cache or cache_dir())


def fetch(cache: Path) -> Path:
    """Download Debian's package into ``cache`` and extract it there (no root needed)."""
    missing = [tool for tool in ("apt-get", "dpkg") if shutil.which(tool) is None]
    if missing:
        raise AlertmanagerError(
            f"Alertmanager not found on PATH and {', '.join(missing)} is missing: {INSTALL_HINT}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    # Build in a private directory and rename it into place, so two runs fetching at once
    # never see each other's half-extracted tree.
    work = Path(tempfile.mkdtemp(prefix="fetch-", dir=cache))
    try:
        try:
            _run(["apt-get", "download", PACKAGE], cwd=work)
        except AlertmanagerError:
            if os.geteuid() != 0:
                raise
            # A fresh machine may have no package lists yet; root can fetch them once.
            _run(["apt-get", "update"], cwd=work)
            _run(["apt-get", "download", PACKAGE], cwd=work)
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise AlertmanagerError(f"apt-get download {PACKAGE} left no .deb: {INSTALL_HINT}")
        _run(["dpkg", "-x", str(debs[-1]), "root"], cwd=work)
        _relocate(work / "root")
        target = cache / "root"
        if not target.exists():
            os.replace(work / "root", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    binary = cached_binary(cache)
    if not binary.is_file():
        raise AlertmanagerError(f"no Alertmanager binary in {PACKAGE}'s package: {INSTALL_HINT}")
    return binary


def _run(args: list[str], cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AlertmanagerError(
            f"`{' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()[-500:]}; "
            f"{INSTALL_HINT}"
        )


def _relocate(root: Path) -> None:
    """Write ``usr/bin/alertmanager``: the package's binary reading templates relative to cwd."""
    original = root / "usr" / "bin" / PACKAGE
    if not original.is_file():
        raise AlertmanagerError(f"{PACKAGE}'s package has no usr/bin/{PACKAGE}: {INSTALL_HINT}")
    data = original.read_bytes()
    relocated = root / "usr" / "bin" / "alertmanager"
    relocated.write_bytes(data.replace(ABSOLUTE, RELATIVE))
    relocated.chmod(0o755)


def version(binary: Path) -> str:
    """The first line of ``--version``, e.g. ``alertmanager, version 0.25.0 (...)``."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AlertmanagerProcess(subprocess.Popen[bytes]):
    """A running Alertmanager; ``url`` is its base URL. ``stop()`` ends it and removes its
    temporary directory (config, storage, log); also a context manager."""

    url: str
    port: int
    workdir: Path

    def log(self) -> str:
        path = self.workdir / "alertmanager.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.poll() is None:
            self.terminate()
            try:
                self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start(
    config_yaml: str,
    port: int | None = None,
    *,
    binary: Path | None = None,
    timeout: float = 30.0,
    extra_args: tuple[str, ...] = (),
) -> AlertmanagerProcess:
    """Start Alertmanager on 127.0.0.1:``port`` (a free one if None) with ``config_yaml``;
    return once ``/-/ready`` answers 200 (raise ``AlertmanagerError`` with its log if not)."""
    binary = (binary or find_or_fetch()).resolve()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="wf-alertmanager-"))
    config = workdir / "alertmanager.yml"
    config.write_text(config_yaml)
    (workdir / "data").mkdir()
    args = [
        str(binary),
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        *extra_args,
    ]
    # The relocated binary finds its templates relative to the extraction root (see above).
    root = binary.parents[2] if len(binary.parents) > 2 else binary.parent
    cwd = root if (root / TEMPLATES / "default.tmpl").is_file() else workdir
    with open(workdir / "alertmanager.log", "wb") as log:
        proc = AlertmanagerProcess(
            args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    proc.url, proc.port, proc.workdir = f"http://127.0.0.1:{port}", port, workdir
    try:
        _wait_ready(proc, timeout)
    except BaseException:
        text = proc.log()
        proc.stop()
        raise AlertmanagerError(f"Alertmanager did not become ready:\n{text[-2000:]}") from None
    return proc


def _wait_ready(proc: AlertmanagerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AlertmanagerError(f"exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{proc.url}/-/ready", timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise AlertmanagerError(f"no 200 from /-/ready within {timeout} s")


def webhook_config(url: str, *, group_wait: str = "30s", group_by: str = "alertname") -> str:
    """A minimal configuration: every alert to one webhook, grouped by ``group_by``."""
    return (
        "route:\n"
        "  receiver: hook\n"
        f"  group_by: [{group_by}]\n"
        f"  group_wait: {group_wait}\n"
        "  group_interval: 5m\n"
        "  repeat_interval: 4h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {url}\n"
        "        send_resolved: false\n"
    )


def main() -> None:
    try:
        binary = find_or_fetch()
    except AlertmanagerError as exc:
        sys.exit(str(exc))
    print(binary)
    print(version(binary))


if __name__ == "__main__":
    main()
