"""`watchfloor up`: the whole stack on one machine, with the duty console attached.

Order of start: data directory and keys, Redis (embedded unless a URL is
configured), the stack's tokens, then the monitor (engine, playbooks, audit,
API) and the collector as supervised child processes, the simulator with
``--demo``, and finally the console in the foreground. Ctrl-C, SIGTERM or
quitting the console stops everything in reverse order: the simulator, the
collector (which drains what it accepted into Redis or its spool), the monitor
(which commits its checkpoint), then Redis (which flushes its AOF).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from watchfloor import logs
from watchfloor.bootstrap import TokenFile, ensure_token, prepare_data_dir
from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core.config import Config
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import check_reachable, die_with_parent, redis_url_for
from watchfloor.errors import CommandError
from watchfloor.run_files import remove_pid, write_addresses, write_pid
from watchfloor.supervisor import Child, Supervisor
from watchfloor.supervisor_status import StatusPublisher

logger = logging.getLogger(__name__)

DEMO_SPEED = 1.0
READY_TIMEOUT_S = 60.0


def register(sub: Any) -> None:
    parser = sub.add_parser("up", help="run the whole stack with the duty console")
    add_config_options(parser)
    parser.add_argument(
        "--demo", action="store_true", help="feed the simulator's scenarios into the stack"
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no console: print the URLs and token files, run until stopped",
    )
    parser.add_argument("--collector-port", type=int, help="collector port (default 8470)")
    parser.add_argument("--api-port", type=int, help="monitor API port (default 8471)")
    parser.add_argument(
        "--demo-speed",
        type=float,
        default=DEMO_SPEED,
        help=f"time compression of the demo traffic (default {DEMO_SPEED})",
    )
    parser.add_argument("--lang", choices=("en", "zh"), help="console language")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="monitor workers sharing the events shards (default 1); the first serves the API",
    )
    parser.set_defaults(func=run_up)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be 1 to 64, got {value}")
    return value


def effective_config(args: argparse.Namespace) -> Config:
    config = config_from_args(args)
    if args.collector_port is not None:
        config = dataclasses.replace(
            config, collector=dataclasses.replace(config.collector, port=args.collector_port)
        )
    if args.api_port is not None:
        config = dataclasses.replace(
            config, api=dataclasses.replace(config.api, port=args.api_port)
        )
    return config


def run_up(args: argparse.Namespace) -> int:
    config = effective_config(args)
    created = prepare_data_dir(config)
    log_path = config.path("logs", "up.log")
    stderr_level = logging.WARNING if args.headless else None
    logs.log_to_file(log_path, level=logging.INFO, stderr_level=stderr_level)
    stop = _StopSignal()
    with redis_url_for(
        config.redis.url,
        config.data_dir,
        binary=config.redis.embedded_binary,
        keep_alive=True,
        fsync=config.redis.appendfsync,
    ) as url:
        asyncio.run(check_reachable(url))
        admin, producer = asyncio.run(_tokens(url, config.data_dir))
        _greet(config, url, admin, producer, created, args)
        anchor = _demo_history(config, url, args, producer) if args.demo else None
        publisher = StatusPublisher(url, changes_maxlen=config.redis.changes_maxlen)
        supervisor = Supervisor(_children(config, url, args, producer, anchor), publish=publisher)
        supervisor.start()
        stop.on_reload = functools.partial(_forward_reload, supervisor)
        try:
            _wait_ready(config, supervisor, stop)
            write_pid(config)  # from now on `watchfloor reload` finds this stack
            write_addresses(config)  # and `doctor` / `console` beside it its ports
            if args.headless:
                print("watchfloor: running; Ctrl-C or SIGTERM stops it", flush=True)
                stop.wait()
            else:
                _attach_console(config, admin, args, stop)
        finally:
            print("watchfloor: stopping ...", flush=True)
            remove_pid(config)
            supervisor.stop()
            _close_quietly(publisher)
    print(
        f"watchfloor: stopped; the next `watchfloor up` resumes from {config.data_path.resolve()}",
        flush=True,
    )
    return 0


async def _tokens(url: str, data_dir: str) -> tuple[TokenFile, TokenFile]:
    client = redis_connect(url)
    try:
        admin = await ensure_token(client, data_dir, "admin", "admin")
        producer = await ensure_token(client, data_dir, "local-producer", "producer")
    finally:
        await client.aclose()
    return admin, producer


def _greet(
    config: Config,
    url: str,
    admin: TokenFile,
    producer: TokenFile,
    created: list[Path],
    args: argparse.Namespace,
) -> None:
    data = config.data_path.resolve()
    lines = [f"watchfloor: data directory {data}" + (" (created)" if created else "")]
    lines.append(f"  redis      {url}" + ("  (embedded)" if not config.redis.url else ""))
    lines.append(f"  collector  http://{config.collector.host}:{config.collector.port}")
    lines.append(f"  api        http://{config.api.host}:{config.api.port}")
    lines.append(f"  logs       {data / 'logs'}")
    if admin.created:
        lines.append(f"  admin token (shown once, kept in {admin.path}):")
        lines.append(f"    {admin.token}")
    else:
        lines.append(f"  admin token file     {admin.path}")
    lines.append(f"  producer token file  {producer.path}")
    lines += _audit_pin_lines(config)
    print("\n".join(lines), flush=True)


def _audit_pin_lines(config: Config) -> list[str]:
    """The audit key's fingerprint, for the security officer to keep off this server."""
    from watchfloor.security.audit_trust import fingerprint, shown
    from watchfloor.security.keys import keys_dir
    from watchfloor.security.signer import SignerError, load_signer

    try:
        signer = load_signer(keys_dir(config.data_dir))
    except SignerError as exc:
        return [f"  audit signing key    unavailable: {exc}"]
    fp = fingerprint(signer.public_key)
    return [
        f"  audit key fingerprint {shown(fp)}",
        "    keep it off this server; `watchfloor audit verify --pin FINGERPRINT` trusts only it",
    ]


def _demo_history(
    config: Config, url: str, args: argparse.Namespace, producer: TokenFile
) -> str | None:
    """Send the demo's history before the monitor starts (it drops events behind its
    watermark, which follows the wall clock once it runs); the moment it ends.

    A restarted stack's monitor has seen time past the start of a new history
    already (its 42 minutes at speed 1): sending it again would put old traffic
    behind that clock and on top of what it saw. The demo then goes on from now
    without history; the monitor's windows are warm from the previous run.
    """
    from watchfloor.collector.simulator.live_time import history_start
    from watchfloor.collector.simulator.scenarios import pre_rolled_s

    anchor = time.time()
    seen = asyncio.run(_monitor_clock(url))
    if seen is not None and seen >= history_start(anchor, pre_rolled_s("all")[0], args.demo_speed):
        logger.info("demo history not sent: the monitor's clock is already at %.3f", seen)
        return f"{anchor:.3f}"
    command = [sys.executable, "-m", "watchfloor", "simulate", "--scenario", "all",
               "--speed", str(args.demo_speed), "--history-only", "--data-dir",
               config.data_dir, "--redis", url]  # fmt: skip
    command += ["--config", args.config] if args.config else []
    env = {**os.environ, "WATCHFLOOR_TOKEN": producer.token}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        logger.error("demo history not sent: %s", done.stderr.strip()[-500:])
        return None
    return done.stdout.strip().splitlines()[-1]


async def _monitor_clock(url: str) -> float | None:
    """The watermark a previous run of the monitor left (None on a fresh data directory)."""
    from watchfloor.core import engine_status

    client = redis_connect(url)
    try:
        raw = (await engine_status.read(client)).get("watermark")
    finally:
        await client.aclose()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _children(
    config: Config,
    url: str,
    args: argparse.Namespace,
    producer: TokenFile,
    anchor: str | None = None,
) -> list[Child]:
    python = [sys.executable, "-m", "watchfloor"]
    common = ["--data-dir", config.data_dir] + (["--config", args.config] if args.config else [])
    env = {
        "WATCHFLOOR_DATA_DIR": config.data_dir,
        "WATCHFLOOR_REDIS_URL": url,
        "WATCHFLOOR_COLLECTOR_PORT": str(config.collector.port),
        "WATCHFLOOR_API_PORT": str(config.api.port),
        "WATCHFLOOR_LOG_LEVEL": os.environ.get("WATCHFLOOR_LOG_LEVEL", "info"),  # to the log files
    }
    logs = config.path("logs")
    workers = getattr(args, "workers", 1)
    children = [
        Child(
            "monitor" if n == 1 else f"monitor-{n}",
            [*python, "monitor", *common, "--worker-id", f"monitor-{n}"]
            + ([] if n == 1 else ["--no-api"]),
            logs / ("monitor.log" if n == 1 else f"monitor-{n}.log"),
            env,
        )
        for n in range(1, workers + 1)
    ]
    children += [
        Child("collector", [*python, "collector", *common], logs / "collector.log", env),
    ]
    if args.demo:
        collector_url = f"http://{config.collector.host}:{config.collector.port}"
        children.append(
            Child(
                "simulator",
                [
                    *python,
                    "simulate",
                    "--scenario",
                    "all",
                    "--speed",
                    str(args.demo_speed),
                    "--url",
                    collector_url,
                    *(["--after-history", anchor] if anchor else []),
                ],
                logs / "simulator.log",
                {**env, "WATCHFLOOR_TOKEN": producer.token},
                restart=False,
            )
        )
    return children


def _wait_ready(config: Config, supervisor: Supervisor, stop: _StopSignal) -> None:
    """Wait until the collector and the API answer /healthz (or a service dies)."""
    urls = [
        f"http://{config.collector.host}:{config.collector.port}/healthz",
        f"http://{config.api.host}:{config.api.port}/healthz",
    ]
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = list(urls)
    while pending and time.monotonic() < deadline and not stop.is_set():
        pending = [u for u in pending if not _answers(u)]
        dead = [c for c in supervisor.children if c.restart and not c.alive]
        if dead:
            names = ", ".join(f"{c.name} (see {c.log_path})" for c in dead)
            raise _user_error(f"{names} stopped while starting")
        time.sleep(0.2)
    if pending and not stop.is_set():  # stopped while starting is not a failure
        raise _user_error(
            f"not ready after {READY_TIMEOUT_S:.0f}s: {', '.join(pending)}; "
            f"see the logs in {config.path('logs')}"
        )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status < 500)
    except (urllib.error.URLError, OSError):
        return False


def _attach_console(
    config: Config, admin: TokenFile, args: argparse.Namespace, stop: _StopSignal
) -> None:
    """Run the console in the foreground of this terminal until it quits or we are stopped."""
    argv = [
        sys.executable,
        "-m",
        "watchfloor",
        "console",
        "--data-dir",
        config.data_dir,
        "--url",
        f"http://{config.api.host}:{config.api.port}",
        "--token-file",
        str(admin.path),
    ]
    if args.lang:
        argv += ["--lang", args.lang]
    # Same process group: the console owns the terminal; it still dies with us.
    console = subprocess.Popen(argv, preexec_fn=functools.partial(die_with_parent, False))
    stop.on_signal = console.terminate
    while console.poll() is None and not stop.is_set():
        time.sleep(0.1)
    if console.poll() is None:
        console.terminate()
        try:
            console.wait(10)
        except subprocess.TimeoutExpired:
            console.kill()


def _forward_reload(supervisor: Supervisor) -> None:
    """SIGHUP: the monitor applies webhooks, rules and playbooks (it validates and audits)."""
    workers = [c.name for c in supervisor.children if c.name.startswith("monitor")]
    sent = [name for name in workers if supervisor.signal(name, signal.SIGHUP)]
    if sent:
        logger.info("reload requested: passed on to %s", ", ".join(sent))
    else:
        logger.warning("reload requested while the monitor is restarting: it reads the "
                       "settings when it starts")  # fmt: skip


class _StopSignal:
    """SIGINT / SIGTERM turned into an event the main thread can wait on; SIGHUP into
    ``on_reload`` (before the children run, a reload has nothing to do)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.on_signal: Any = None
        self.on_reload: Any = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        signal.signal(signal.SIGHUP, self._reload)

    def _reload(self, signum: int, frame: object) -> None:
        if self.on_reload is not None:
            self.on_reload()

    def _handle(self, signum: int, frame: object) -> None:
        logger.info("signal %s received: stopping", signum)
        self._event.set()
        if self.on_signal is not None:
            self.on_signal()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self) -> None:
        while not self._event.wait(0.5):
            pass


def _close_quietly(publisher: StatusPublisher) -> None:
    try:
        publisher.close()
    except (RedisError, OSError) as exc:  # Redis already gone: its TTL expires the status
        logger.warning("supervisor status not removed: %s", exc)


def _user_error(message: str) -> Exception:
    return CommandError(message)
