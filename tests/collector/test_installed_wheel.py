"""Installed, Watchfloor is one ``watchfloor`` namespace and lives beside anyone's ``core``.

The wheel is built from the repository and installed with pip into a fresh virtual
environment that already holds packages named ``core`` and ``security`` (an integrator's
own). The producer client then sends to a real collector from that environment, and
``watchfloor doctor`` runs there: neither may pick up the foreign packages, and the
foreign packages must still import as themselves.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

from tests.collector.conftest import StartCollector
from watchfloor.security.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[2]
FOREIGN = ("core", "security")
CLIENT = textwrap.dedent(
    """
    import asyncio, sys, time
    import core, security
    from watchfloor.collector.client import ProducerClient

    assert core.OWNER == security.OWNER == "integrator", (core.__file__, security.__file__)

    async def main(url, token):
        async with ProducerClient(url, token) as client:
            await client.send({"type": "heartbeat", "ts": time.time(), "source": "acd-1"})
        print("accepted", client.stats.accepted)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def fresh_venv_with_foreign_packages(where: Path) -> Path:
    """A new venv whose own site-packages holds ``core`` and ``security`` of someone else.

    Its third-party dependencies come from this test run's environment through a
    path entry placed *after* its own site-packages, so nothing is downloaded and our
    packages can only come from the wheel installed into it.
    """
    venv = where / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=where).check_returncode()
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                    cwd=where).stdout.strip())  # fmt: skip
    for name in FOREIGN:
        (site / name).mkdir()
        (site / name / "__init__.py").write_text('OWNER = "integrator"\n')
    (site / "zz-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def build_wheel(where: Path) -> Path:
    source = where / "source"
    skip = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    out = where / "dist"
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source,
                cwd=where)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return next(out.glob("watchfloor-*.whl"))


async def test_the_wheel_installs_one_namespace_beside_foreign_core_and_security(
    tmp_path: Path, start_collector: StartCollector, redis_url: str, redis_client: Any
) -> None:
    wheel = build_wheel(tmp_path)
    python = fresh_venv_with_foreign_packages(tmp_path)
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                    "-q", wheel, cwd=tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                    cwd=tmp_path).stdout.strip())  # fmt: skip
    ours = sorted(p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info"))
    assert ours == ["core", "security", "watchfloor"], ours  # nothing else at the top level
    assert (site / "watchfloor" / "monitor" / "rules" / "default.toml").is_file()

    running = await start_collector(redis_url)
    token, _ = await TokenStore(redis_client).create("acd-1", "producer")
    # In a thread: the collector serves from this test's event loop.
    sent = await asyncio.to_thread(run, python, "-c", CLIENT, running.url, token, cwd=tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "accepted 1" in sent.stdout

    doctor = run(python.parent / "watchfloor", "doctor", "--data-dir", tmp_path / "wf",
                 cwd=tmp_path)  # fmt: skip
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "problem" not in doctor.stdout, doctor.stdout
