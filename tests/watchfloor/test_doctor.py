"""`watchfloor doctor` names what stops `up`: taken ports, unreachable Redis, bad data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from watchfloor.core.redis_server import free_port


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


def test_doctor_beside_a_running_stack_checks_its_redis_and_knows_its_ports(
    running_stack,
) -> None:
    """Before, doctor reported the stack's own ports as taken (FAIL, exit 1) and checked a
    throwaway Redis instead of the one the stack runs on."""
    import msgpack

    from watchfloor.core import keys
    from watchfloor.core.redis_client import connect_sync
    from watchfloor.core.stack_lock import read_holder
    from watchfloor.security.tokens import hash_token

    stack = running_stack
    (stack_redis,) = stack.redis_servers()
    ports = {
        "WATCHFLOOR_API_PORT": stack.api.rsplit(":", 1)[1],
        "WATCHFLOOR_COLLECTOR_PORT": stack.collector.rsplit(":", 1)[1],
    }
    result = doctor("--data-dir", str(stack.data_dir), env=ports)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    pid = stack.process.pid
    assert f"ok   redis: the running stack's Redis (pid {pid}) unix://" in out
    assert f"is served by the running stack (pid {pid})" in out
    assert "ok   tokens: every token record carries a valid seal" in out
    assert stack.redis_servers() == [stack_redis]
    # Started with --api-port / --collector-port: doctor finds them in run/stack.json.
    plain = doctor("--data-dir", str(stack.data_dir)).stdout
    for name, port in (("collector", ports["WATCHFLOOR_COLLECTOR_PORT"]),
                       ("api", ports["WATCHFLOOR_API_PORT"])):  # fmt: skip
        assert f"ok   {name} port: 127.0.0.1:{port} is served by the running stack" in plain, plain

    holder = read_holder(stack.data_dir / "redis")
    assert holder is not None
    client = connect_sync(holder.url)
    record = {"name": "intruder", "role": "admin", "created": 1.0, "expires": None,
              "revoked": None}  # fmt: skip
    client.hset(keys.TOKENS, hash_token("wf_" + "X" * 43), msgpack.packb(record))
    client.close()
    result = doctor("--data-dir", str(stack.data_dir), env=ports)
    assert result.returncode == 1
    assert "FAIL tokens: 1 token record(s) in Redis were not created by Watchfloor: " in (
        result.stdout
    )
    assert "intruder (admin" in result.stdout
