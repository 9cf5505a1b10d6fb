"""The service commands fail with one clear line when their port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_a_monitor_whose_api_port_is_taken_says_so_in_one_line(
    redis_url: str, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "watchfloor", "monitor", "--redis", redis_url,
             "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "WATCHFLOOR_API_PORT": str(port)},
        )  # fmt: skip
    assert result.returncode == 1
    assert f"watchfloor monitor: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
