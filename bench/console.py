"""How fast the duty console shows what happens, and what it costs, through the real API.

Three processes, as in production: Redis (embedded), the monitor API (with a
load generator writing queue-board rows and changes exactly as the engine's
``Board.flush`` does: 5 changes per second per queue), and the console
(headless Textual at 200×50, every frame rendered to an in-memory terminal so
that the drawing work is paid as on a real one). Measured in the console
process:

- change on screen: from the row's ``updated_at`` (written by the generator
  just before its transaction) to the first frame after the table cell was
  updated, p50 / p99;
- console CPU: process CPU time over wall time while under load (share of one
  core);
- key press to repaint: from a key (cursor down, or sort) to the next frame.

Targets: change on screen p99 ≤ 1 s, key to repaint ≤ 100 ms, CPU ≤ 30 %.

Run: python bench/console.py [--queues 500] [--incidents 100] [--runs 20] [--rate 5]
     [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from watchfloor.core.redis_client import connect as redis_connect

# This file is named like the package it measures: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

CHANNELS = ("chat", "phone", "email", "chat", "social")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def queue_row(i: int, now: float, tick: int) -> dict[str, Any]:
    channel = CHANNELS[i % len(CHANNELS)]
    waiting = (i * 7 + tick) % 60
    return {
        "queue": f"q{i:03d}-{channel}", "channel": channel, "waiting": waiting,
        "longest_wait_s": float(waiting * 1.5), "agents_available": i % 5,
        "agents_busy": 10 + i % 7, "service_level": 0.8, "abandon_rate": 0.04, "asa_s": 12.0,
        "offered_5m": 100 + i, "trend": [(waiting + k) % 60 for k in range(30)],
        "sla_threshold_s": None, "updated_at": now, "source": "bench",
    }  # fmt: skip


def make_runner(redis: Any, incidents: Any, audit: Any) -> Any:
    """The playbook runner, or None (and a note) when it cannot be built."""
    try:
        from watchfloor.playbooks.library import Library
        from watchfloor.playbooks.runner import PlaybookRunner

        return PlaybookRunner(redis, incidents, audit, Library.load(), auto_start=False)
    except Exception as exc:  # the bench still measures the board without runs
        print(f"note: no playbook runner ({type(exc).__name__}: {exc}); runs left out",
              file=sys.stderr)  # fmt: skip
        return None


# --- the API process -------------------------------------------------------------------


async def serve_api(redis_url: str, port: int, data_dir: str, queues: int, rate: float) -> None:
    import dataclasses

    import msgpack
    from aiohttp import web

    from watchfloor.api.app import create_app
    from watchfloor.core import keys
    from watchfloor.core.changes import add_change
    from watchfloor.core.config import Config
    from watchfloor.core.incidents import IncidentStore
    from watchfloor.security.audit import open_audit

    redis = redis_connect(redis_url)
    config = Config(data_dir=data_dir)
    config = dataclasses.replace(config, api=dataclasses.replace(config.api, live_queue=20000))
    incidents = IncidentStore(redis)
    audit = open_audit(config, redis, create_keys=True)
    runner = make_runner(redis, incidents, audit)
    app = create_app(config, redis, incidents=incidents, runner=runner, audit=audit)
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", port).start()
    print("ready", flush=True)

    # The load: every 100 ms a tenth of the per-second changes, spread over the queues.
    per_tick = max(1, round(queues * rate / 10))
    cursor, tick = 0, 0
    while True:
        started = time.monotonic()
        async with redis.pipeline(transaction=True) as pipe:
            now = time.time()
            for _ in range(per_tick):
                row = queue_row(cursor, now, tick)
                pipe.hset(keys.QUEUES, row["queue"], msgpack.packb(row, use_bin_type=True))
                add_change(pipe, "queue", "updated", row)
                cursor = (cursor + 1) % queues
            await pipe.execute()
        tick += 1
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))


# --- set-up in the orchestrating process ---------------------------------------------------


async def prepare(redis_url: str, queues: int, incidents: int, runs: int) -> str:
    import msgpack

    from watchfloor.core import keys
    from watchfloor.core.incidents import IncidentStore
    from watchfloor.security.audit import AuditLog
    from watchfloor.security.tokens import TokenStore

    redis = redis_connect(redis_url)
    now = time.time()
    rows = {queue_row(i, now, 0)["queue"]: msgpack.packb(queue_row(i, now, 0))
            for i in range(queues)}  # fmt: skip
    await redis.hset(keys.QUEUES, mapping=rows)
    store = IncidentStore(redis)
    runner = make_runner(redis, store, AuditLog(redis)) if runs else None
    severities = ("critical", "major", "minor", "info")
    for n in range(incidents):
        fired = await store.fire(
            kind="surge", rule="surge.bench", subject=f"q{n:03d}", severity=severities[n % 4],
            title=f"售前咨询 surge {n}", evidence={"waiting": n}, at=now - n,
        )  # fmt: skip
        if n < runs and runner is not None:
            await runner.start("contact-surge", fired.incident.id, actor="bench", role="admin")
    token, _ = await TokenStore(redis).create("bench-console", "duty_manager")
    await redis.aclose()
    return token


# --- the console, measured ---------------------------------------------------------------


class Meter:
    """Frames and what each frame made visible."""

    def __init__(self) -> None:
        self.pending: list[float] = []
        self.latencies: list[float] = []
        self.frames = 0
        self.last_frame = 0.0
        self.sink = None
        self.watch: tuple[Any, int] | None = None
        """(queue board, cursor before a key): the next frame after it moved ends a key."""
        self.key_shown = asyncio.Event()

    def frame(self, renderable: Any) -> None:
        from rich.console import Console

        if self.sink is None:
            self.sink = Console(file=io.StringIO(), force_terminal=True, width=200, height=50,
                                color_system="truecolor", legacy_windows=False)  # fmt: skip
        self.sink.file = io.StringIO()
        self.sink.print(renderable)  # pay for the drawing as a real terminal would
        now = time.time()
        self.frames += 1
        self.last_frame = time.perf_counter()
        self.latencies.extend(now - at for at in self.pending)
        self.pending.clear()
        if self.watch is not None and self.watch[0].cursor != self.watch[1]:
            self.watch = None
            self.key_shown.set()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, token: str, seconds: float, queues: int,
                  api_pid: int) -> dict[str, Any]:  # fmt: skip
    from textual import events
    from textual.app import App

    from watchfloor.console.app import ConsoleApp
    from watchfloor.console.widgets.queue_board import QueueBoard

    meter = Meter()
    original_display = App._display
    original_sync = QueueBoard.sync

    def display(self: App, screen: Any, renderable: Any) -> None:
        original_display(self, screen, renderable)
        if renderable is not None:
            meter.frame(renderable)

    def sync(self: QueueBoard, state: Any, dirty: Any, now: float) -> None:
        original_sync(self, state, dirty, now)
        if not dirty.reset:
            meter.pending.extend(float(state.queues[n]["updated_at"]) for n in dirty.queue
                                 if n in state.queues)  # fmt: skip

    App._display = display  # type: ignore[method-assign]
    QueueBoard.sync = sync  # type: ignore[method-assign]
    app = ConsoleApp(url, token)
    keys: list[float] = []
    async with app.run_test(size=(200, 50)) as pilot:
        while len(app.board.queues) < queues:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # let the first redraws pass
        meter.latencies.clear()
        cpu0, api0, wall0 = _cpu(), process_cpu(api_pid), time.perf_counter()
        end = wall0 + seconds
        board = app.screen.query_one(QueueBoard)
        while time.perf_counter() < end:
            await asyncio.sleep(0.5)
            # A key as the terminal driver delivers it; it counts as shown at the first
            # frame drawn after the cursor moved.
            meter.key_shown.clear()
            meter.watch = (board, board.cursor)
            pressed = time.perf_counter()
            app.post_message(events.Key("down" if board.cursor < 20 else "home", None))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(meter.key_shown.wait(), 2.0)
            keys.append(meter.last_frame - pressed)
        wall = time.perf_counter() - wall0
        cpu, api_cpu = (_cpu() - cpu0) / wall, (process_cpu(api_pid) - api0) / wall
        sort_started = time.perf_counter()
        frames = meter.frames
        await pilot.press("s")
        while meter.frames == frames:
            await asyncio.sleep(0.01)
        sort_key = meter.last_frame - sort_started
    lat = sorted(meter.latencies)
    return {
        "changes_seen": len(lat),
        "change_on_screen_p50_ms": round(_pct(lat, 50) * 1000, 1),
        "change_on_screen_p99_ms": round(_pct(lat, 99) * 1000, 1),
        "console_cpu_share": round(cpu, 3),
        "api_and_load_generator_cpu_share": round(api_cpu, 3),
        "key_presses": len(keys),
        "key_to_repaint_p50_ms": round(statistics.median(keys) * 1000, 1),
        "key_to_repaint_p90_ms": round(_pct(sorted(keys), 90) * 1000, 1),
        "key_to_repaint_max_ms": round(max(keys) * 1000, 1),
        "sort_500_rows_to_repaint_ms": round(sort_key * 1000, 1),
        "frames_per_s": round(meter.frames / (seconds + 2.5), 1),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queues", type=int, default=500)
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="changes per second per queue")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", help="write cProfile stats of the console here")
    parser.add_argument("--serve", nargs=3, metavar=("REDIS_URL", "PORT", "DATA_DIR"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_api(args.serve[0], int(args.serve[1]), args.serve[2], args.queues,
                              args.rate))  # fmt: skip
        return
    from watchfloor.core.redis_server import EmbeddedRedis

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=False)
        redis_url = server.start()
        api = None
        try:
            token = asyncio.run(prepare(redis_url, args.queues, args.incidents, args.runs))
            port = free_port()
            api = subprocess.Popen(
                [sys.executable, __file__, "--queues", str(args.queues), "--rate",
                 str(args.rate), "--serve", redis_url, str(port), str(Path(tmp) / "data")],
                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()},
            )  # fmt: skip
            assert api.stdout is not None
            api.stdout.readline()  # "ready"
            run = measure(f"http://127.0.0.1:{port}", token, args.seconds, args.queues, api.pid)
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                result = profiler.runcall(asyncio.run, run)
                profiler.dump_stats(args.profile)
            else:
                result = asyncio.run(run)
        finally:
            if api is not None:
                api.terminate()
                api.wait(5)
            server.stop()
    result.update(queues=args.queues, incidents=args.incidents, runs=args.runs,
                  changes_per_s=args.queues * args.rate, cpus=os.cpu_count(),
                  python=platform.python_version())  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
