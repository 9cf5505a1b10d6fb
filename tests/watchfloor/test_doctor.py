"""`watchfloor doctor` names what stops `up`: taken ports, unreachable Redis, bad data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from core.redis_server import free_port


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchfloor", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def free_ports_env() -> dict[str, str]:
    return {"WATCHFLOOR_COLLECTOR_PORT": str(free_port()), "WATCHFLOOR_API_PORT": str(free_port())}


def test_doctor_passes_and_starts_the_embedded_redis(tmp_path: Path) -> None:
    result = doctor("--data-dir", str(tmp_path / "d"), env=free_ports_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded Redis" in result.stdout and "starts and stops" in result.stdout


def test_doctor_checks_a_configured_redis(tmp_path: Path, redis_url: str) -> None:
    result = doctor("--data-dir", str(tmp_path), "--redis", redis_url, env=free_ports_env())
    assert result.returncode == 0, result.stdout
    assert f"{redis_url} answers" in result.stdout


def test_doctor_names_a_taken_port_an_unreachable_redis_and_a_bad_data_dir(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        env = {**free_ports_env(), "WATCHFLOOR_API_PORT": str(taken)}
        result = doctor(
            "--data-dir", str(blocker / "d"), "--redis", "redis://127.0.0.1:1/0", env=env
        )
    assert result.returncode == 1
    out = result.stdout
    assert f"FAIL api port: 127.0.0.1:{taken} is taken" in out
    assert "FAIL redis: Redis at redis://127.0.0.1:1/0 is unreachable" in out
    assert "FAIL data dir:" in out and "not writable" in out
    assert "3 problem(s): data dir, redis, api port" in out


def test_doctor_names_a_bad_config_key(tmp_path: Path) -> None:
    (tmp_path / "watchfloor.toml").write_text("[collector]\nprot = 1\n")
    result = doctor("--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "collector.prot: unknown key" in result.stdout


def test_the_command_prints_its_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watchfloor", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout.startswith("watchfloor ")
