"""Watchfloor next to Prometheus Alertmanager, in one run on one machine.

A local aiohttp webhook receiver on 127.0.0.1 timestamps every notification of both tools
(same process, same monotonic clock as the senders). Measured:

1. signal -> notification, p50 / p99 over ``--trials`` trials, idle and under
   ``--rate`` events/s of background load:
   - Watchfloor: a real stack (embedded Redis, ``watchfloor collector``, ``watchfloor
     monitor`` with a ``default`` JSON webhook to the receiver, so the pager pages every
     incident there). A trial posts a failed probe of a new component, and 0.3 s later the
     decisive second failed probe (``[outage] down_probes = 2``); timed from that POST to
     the first notification naming the component. The background load is
     ``bench/e2e.py``'s producer (healthy queue snapshots, contacts, heartbeats).
   - Alertmanager: an alert with a new ``subject`` label (``group_by: [subject]``: a new
     group) posted to ``/api/v2/alerts``, timed to its webhook, with ``group_wait: 30s``
     (its default; these trials run concurrently, staggered, as distinct groups do) and
     ``group_wait: 0s``. Its background load is ``--rate`` alerts/s re-sending a fixed set
     of firing alerts, as Prometheus re-sends what still fires.
2. ingest: events/s one collector accepts (msgpack batches of 1 000 with ids) vs alerts/s
   Alertmanager accepts (JSON batches of 1 000), from ``--producers`` processes with
   ``--in-flight`` requests each, ``--batches`` batches a producer.
3. storm: ``--storm`` signals about 10 subjects in 10 s (failed probes of 10 components /
   alerts of 10 subjects): notifications each delivers and the time until the last subject
   is notified.

Run: python -m bench.peers [--trials 200] [--rate 10000] [--quick] [--write]
(``--write`` puts the table into docs/BENCHMARKS.md's peers section).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
from aiohttp import web

from bench import alertmanager, machine, replace_section
from bench.e2e import Stack, healthy_events, quantile
from watchfloor.core import keys
from watchfloor.core.changes import decode_change
from watchfloor.core.redis_client import connect as redis_connect

ROOT = Path(__file__).resolve().parent.parent
E2E = Path(__file__).resolve().parent / "e2e.py"
SUBJECT = re.compile(r"peer-[a-z0-9-]+")
HISTORY = 40
RULES = "[lifecycle]\ncap_per_minute = 1000000\n"
"""Each trial opens an incident of the same rule: the cap (10 a minute) would fold the 11th
of a minute into one "N subjects" incident, as Alertmanager would put them in one group."""


# --- the receiver ---------------------------------------------------------------------------


@dataclass
class Receiver:
    """Every notification's arrival, by tool; the first per subject wakes its waiter."""

    first: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    """The first notification's Unix time, to set against Redis stream ids."""
    count: dict[str, int] = field(default_factory=dict)
    what: dict[str, list[str]] = field(default_factory=dict)
    """Watchfloor: each notification's ``purpose/event`` (a page, a playbook step's)."""
    waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    posts: dict[str, int] = field(default_factory=lambda: {"wf": 0, "am": 0})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/wf", self.watchfloor)
        app.router.add_post("/am", self.alertmanager)
        return app

    def seen(self, subjects: set[str], at: float, what: str = "") -> None:
        for subject in subjects:
            self.count[subject] = self.count.get(subject, 0) + 1
            self.what.setdefault(subject, []).append(what)
            if subject not in self.first:
                self.first[subject], self.wall[subject] = at, time.time()
                waiter = self.waiters.pop(subject, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(at)

    async def watchfloor(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.json()
        self.posts["wf"] += 1
        found = set(SUBJECT.findall(f"{body.get('title', '')} {body.get('text', '')}"))
        self.seen(found, at, f"{body.get('purpose')}/{body.get('event') or body.get('step')}")
        return web.json_response({"ok": True})

    async def alertmanager(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.json()
        self.posts["am"] += 1
        self.seen({a["labels"].get("subject", "") for a in body.get("alerts", [])}, at)
        return web.json_response({"ok": True})

    async def wait(self, subject: str, timeout: float) -> float | None:
        if subject in self.first:
            return self.first[subject]
        future = self.waiters.setdefault(subject, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None


def subject(tag: str) -> str:
    return f"peer-{tag}-{secrets.token_hex(4)}"


def summary(latencies: list[float | None]) -> dict[str, Any]:
    done = [v for v in latencies if v is not None]
    if not done:
        return {"n": 0, "missing": len(latencies)}
    return {
        "n": len(done),
        "missing": len(latencies) - len(done),
        "p50": quantile(done, 0.5),
        "p99": quantile(done, 0.99),
        "max": max(done),
    }


# --- producers (child processes) ------------------------------------------------------------


def wf_batch(n: int, offset: int) -> bytes:
    events = healthy_events(n, time.time(), offset)
    for i, event in enumerate(events):
        event["id"] = f"p{os.getpid()}-{offset + i}"
    return bytes(msgpack.packb(events))


def am_batch(n: int, offset: int, distinct: int | None = None) -> bytes:
    alerts = []
    for i in range(n):
        k = offset + i if distinct is None else (offset + i) % distinct
        alerts.append(
            {
                "labels": {
                    "alertname": "QueueHealthy",
                    "subject": f"bg-{k % 50}",
                    "instance": f"i{os.getpid()}-{k}",
                }
            }
        )
    return json.dumps(alerts).encode()


async def produce(tool: str, url: str, token: str, batches: int, in_flight: int) -> dict:
    """Post ``batches`` pre-built batches of 1 000, ``in_flight`` requests at a time; timed
    from the first send to the last answer."""
    ctype = "application/msgpack" if tool == "wf" else "application/json"
    headers = {"Content-Type": ctype, "Authorization": f"Bearer {token}"}
    target = url + ("/v1/events" if tool == "wf" else "/api/v2/alerts")
    build = wf_batch if tool == "wf" else am_batch
    bodies = [build(1000, k * 1000) for k in range(batches)]
    accepted = errors = 0
    started = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, errors
        while bodies:
            async with session.post(target, data=bodies.pop()) as response:
                reply = await response.read()
                if response.status not in (200, 202):
                    errors += 1
                elif tool == "wf":  # what the collector says it took (not duplicates)
                    accepted += int(json.loads(reply)["accepted"])
                else:
                    accepted += 1000

    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
    return {"accepted": accepted, "errors": errors, "elapsed": time.monotonic() - started}


def produce_child(args: tuple[str, str, str, float, int], out: Any) -> None:
    out.put(asyncio.run(produce(*args)))


def ingest(tool: str, url: str, token: str, opts: argparse.Namespace) -> dict[str, float]:
    """Events (alerts) per second accepted from ``opts.producers`` processes together, and
    the batches refused."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=produce_child, args=((tool, url, token, opts.batches, opts.in_flight), out)
        )
        for _ in range(opts.producers)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    rate = sum(r["accepted"] for r in results) / max(r["elapsed"] for r in results)
    return {"rate": rate, "errors": sum(r["errors"] for r in results)}


async def am_background(url: str, rate: float) -> None:
    """``--am-load``: ``rate`` alerts/s re-sending 2 000 firing alerts, until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    per_batch, sent, started = max(1, int(rate / 20)), 0, time.monotonic()
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        while not stop.is_set():
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
            body = am_batch(per_batch, sent, distinct=2000)
            sent += per_batch
            try:
                async with session.post(url + "/api/v2/alerts", data=body) as response:
                    await response.read()
            except aiohttp.ClientError:
                continue


# --- Watchfloor -----------------------------------------------------------------------------


def wf_probe(component: str, ts: float, status: str = "down") -> list[dict[str, Any]]:
    return [
        {
            "type": "health",
            "ts": ts,
            "source": "peer-probes",
            "component": component,
            "status": status,
            "message": f"probe {status}",
        }
    ]


def wf_history(component: str, now: float) -> list[dict[str, Any]]:
    """40 good probes then a failed one: a component known to be healthy needs 2 failures
    in a row (``down_probes``); a new one needs 3 (its failure rate is not known yet)."""
    good = [wf_probe(component, now - 1.0 + k * 0.02, "up")[0] for k in range(HISTORY)]
    return good + wf_probe(component, now)


async def wf_trials(
    session: aiohttp.ClientSession, stack: Stack, rx: Receiver, n: int, tag: str
) -> dict[str, Any]:
    """Latencies of ``n`` trials, and their split at the incident's write to Redis."""
    headers = {"Authorization": f"Bearer {stack.token}"}
    out: list[float | None] = []
    sent: dict[str, float] = {}
    since_ms = int(time.time() * 1000)
    for _ in range(n):
        component = subject(f"wf-{tag}")
        now = time.time()
        async with session.post(
            stack.collector + "/v1/events", json=wf_history(component, now), headers=headers
        ) as response:
            assert response.status in (200, 202), await response.text()
        await asyncio.sleep(0.3)
        t0, sent[component] = time.monotonic(), time.time()
        async with session.post(
            stack.collector + "/v1/events", json=wf_probe(component, now + 0.3), headers=headers
        ) as response:
            assert response.status in (200, 202), await response.text()
        at = await rx.wait(component, 10.0)
        out.append(None if at is None else at - t0)
    opened, changes = await opened_at(stack.redis.url, set(sent), since_ms)
    detect = [opened[c] - t for c, t in sent.items() if c in opened]
    notify = [rx.wall[c] - opened[c] for c in sent if c in opened and c in rx.wall]
    rate = changes / max(1e-3, time.time() - since_ms / 1000)
    return {
        **summary(out),
        "detect": summary(detect),
        "notify": summary(notify),
        "changes_per_s": rate,
    }


async def opened_at(
    redis_url: str, subjects: set[str], since_ms: int
) -> tuple[dict[str, float], int]:
    """When each subject's incident was first written (its change's stream id, Redis time),
    and how many changes (incidents, runs, board rows) the stream took since ``since_ms``."""
    redis = redis_connect(redis_url)
    found: dict[str, float] = {}
    cursor, seen = f"{since_ms}-0", 0
    try:
        while True:
            entries: Any = await redis.xrange(keys.CHANGES, min=cursor, count=5000)
            seen += len(entries)
            for entry_id, fields in entries:
                change = decode_change(fields)
                name = change.get("data", {}).get("subject")
                if change.get("kind") == "incident" and name in subjects:
                    found.setdefault(name, int(entry_id.split(b"-")[0]) / 1000)
            if len(entries) < 5000:
                return found, seen
            ms, seq = entries[-1][0].decode().split("-")
            cursor = f"{ms}-{int(seq) + 1}"
    finally:
        await redis.aclose()


async def wf_storm(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], rx: Receiver, total: int
) -> dict[str, Any]:
    """``total`` failed probes about 10 components over 10 s, in 100 posts."""
    components = [subject("wf-storm") for _ in range(10)]
    per_post = max(1, total // 100)
    t0 = time.monotonic()
    for k in range(100):
        await asyncio.sleep(max(0.0, t0 + k * 0.1 - time.monotonic()))
        now = time.time()
        batch = [
            wf_probe(components[(k * per_post + i) % 10], now + i * 1e-5)[0]
            for i in range(per_post)
        ]
        async with session.post(url, json=batch, headers=headers) as response:
            assert response.status in (200, 202), await response.text()
    return await storm_result(rx, components, t0, settle=15.0)


async def storm_result(
    rx: Receiver, subjects: list[str], t0: float, settle: float
) -> dict[str, Any]:
    deadline = time.monotonic() + settle
    for name in subjects:
        await rx.wait(name, max(0.01, deadline - time.monotonic()))
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    notified = [rx.first[s] - t0 for s in subjects if s in rx.first]
    return {
        "notifications": sum(rx.count.get(s, 0) for s in subjects),
        "subjects": len(notified),
        "last": max(notified) if notified else None,
        "what": dict(Counter(w for name in subjects for w in rx.what.get(name, []))),
    }


def wf_config(receiver: str) -> str:
    return (
        f'[monitor]\nrules_file = "rules.toml"\n\n[[webhooks]]\nname = "default"\n'
        f'kind = "json"\nurl = "{receiver}/wf"\n'
    )


async def watchfloor_side(rx: Receiver, receiver: str, opts: argparse.Namespace) -> dict:
    stack = Stack(
        argparse.Namespace(lateness=opts.lateness, eval_interval=opts.eval_interval, rate=0)
    )
    (stack.dir / "rules.toml").write_text(RULES)
    (stack.dir / "watchfloor.toml").write_text(
        wf_config(receiver).replace("rules.toml", str(stack.dir / "rules.toml"))
    )
    result: dict[str, Any] = {}
    try:
        await stack.start()
        env = stack.env(stack.redis.url)
        headers = {"Authorization": f"Bearer {stack.token}"}
        async with aiohttp.ClientSession() as session:
            await wf_trials(session, stack, rx, 3, "warm")  # the pager's lease, first pages
            print("watchfloor: idle trials", flush=True)
            result["idle"] = await wf_trials(session, stack, rx, opts.trials, "idle")
            stack.spawn(
                "load",
                [
                    sys.executable,
                    str(E2E),
                    "--load",
                    stack.collector,
                    stack.token,
                    str(opts.rate),
                    str(stack.dir / "load.json"),
                ],
                env,
            )
            await asyncio.sleep(3.0)
            print("watchfloor: trials under load", flush=True)
            result["load"] = await wf_trials(session, stack, rx, opts.trials, "load")
            async with session.get(stack.api + "/healthz") as response:
                result["lag_s"] = (await response.json()).get("engine", {}).get("lag_s")
            load_proc = stack.children.pop()
            load_proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(load_proc.wait, 30)
            result["load_rate"] = load_rate(stack.dir / "load.json")
            await asyncio.sleep(2.0)
            print("watchfloor: storm", flush=True)
            result["storm"] = await wf_storm(
                session, stack.collector + "/v1/events", headers, rx, opts.storm
            )
        print("watchfloor: ingest", flush=True)
        result["ingest"] = await asyncio.to_thread(ingest, "wf", stack.collector, stack.token, opts)
    finally:
        stack.stop()
        shutil.rmtree(stack.dir, ignore_errors=True)
    return result


def load_rate(path: Path) -> float | None:
    if not path.exists():
        return None
    stats = json.loads(path.read_text())
    return float(stats["accepted"] / stats["elapsed_s"])


# --- Alertmanager ---------------------------------------------------------------------------


async def am_trial(
    session: aiohttp.ClientSession, url: str, rx: Receiver, tag: str, delay: float, timeout: float
) -> float | None:
    await asyncio.sleep(delay)
    name = subject(f"am-{tag}")
    body = [{"labels": {"alertname": "ComponentDown", "subject": name}}]
    t0 = time.monotonic()
    async with session.post(url + "/api/v2/alerts", json=body) as response:
        assert response.status == 200, await response.text()
    at = await rx.wait(name, timeout)
    return None if at is None else at - t0


async def am_trials(url: str, rx: Receiver, n: int, tag: str, wait_s: float) -> list:
    async with aiohttp.ClientSession() as session:
        if wait_s == 0:
            return [await am_trial(session, url, rx, tag, 0.0, 10.0) for _ in range(n)]
        # 30 s apiece one after another would take n/2 minutes: distinct groups wait
        # concurrently, so the trials start 0.1 s apart and overlap.
        return list(
            await asyncio.gather(
                *(am_trial(session, url, rx, tag, k * 0.1, wait_s + 30) for k in range(n))
            )
        )


async def am_storm(url: str, rx: Receiver, total: int, settle: float) -> dict[str, Any]:
    subjects = [subject("am-storm") for _ in range(10)]
    per_post = max(1, total // 100)
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        for k in range(100):
            await asyncio.sleep(max(0.0, t0 + k * 0.1 - time.monotonic()))
            body = [
                {
                    "labels": {
                        "alertname": "ProbeFailed",
                        "subject": subjects[(k + i) % 10],
                        "probe": str(k * per_post + i),
                    }
                }
                for i in range(per_post)
            ]
            async with session.post(url + "/api/v2/alerts", json=body) as response:
                assert response.status == 200, await response.text()
    return await storm_result(rx, subjects, t0, settle=settle)


async def alertmanager_side(
    rx: Receiver, receiver: str, opts: argparse.Namespace, binary: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for wait in ("0s", "30s"):
        wait_s = float(wait[:-1])
        config = alertmanager.webhook_config(f"{receiver}/am", group_wait=wait, group_by="subject")
        proc = await asyncio.to_thread(alertmanager.start, config, binary=binary)
        part: dict[str, Any] = {}
        try:
            await am_trials(proc.url, rx, 3, f"warm{wait}", 0)
            print(f"alertmanager group_wait {wait}: idle trials", flush=True)
            part["idle"] = summary(await am_trials(proc.url, rx, opts.trials, "idle", wait_s))
            load = subprocess.Popen(
                [sys.executable, "-m", "bench.peers", "--am-load", proc.url, str(opts.rate)],
                cwd=ROOT,
            )
            await asyncio.sleep(3.0)
            print(f"alertmanager group_wait {wait}: trials under load", flush=True)
            part["load"] = summary(await am_trials(proc.url, rx, opts.trials, "load", wait_s))
            load.send_signal(signal.SIGTERM)
            await asyncio.to_thread(load.wait, 30)
            print(f"alertmanager group_wait {wait}: storm", flush=True)
            part["storm"] = await am_storm(proc.url, rx, opts.storm, settle=wait_s + 15)
            if wait == "0s":
                print("alertmanager: ingest", flush=True)
                result["ingest"] = await asyncio.to_thread(ingest, "am", proc.url, "-", opts)
        finally:
            proc.stop()
        result[wait] = part
    return result


# --- the table ------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f} ms"


def latency(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return f"none of {s.get('missing')} arrived"
    miss = f", {s['missing']} missing" if s["missing"] else ""
    return f"p50 {ms(s['p50'])} / p99 {ms(s['p99'])} (n={s['n']}{miss})"


def ingest_cell(result: dict[str, float], unit: str) -> str:
    refused = f" ({result['errors']:.0f} batches refused)" if result["errors"] else ""
    return f"{result['rate']:,.0f} {unit}/s{refused}"


def storm_cell(s: dict[str, Any]) -> str:
    last = "-" if s["last"] is None else f"{s['last']:.2f} s"
    return f"{s['notifications']} notifications, {s['subjects']}/10 subjects, last at {last}"


def table(wf: dict[str, Any], am: dict[str, Any], opts: argparse.Namespace) -> list[str]:
    rows = [
        (
            "signal → notification, idle",
            latency(wf["idle"]),
            latency(am["0s"]["idle"]),
            latency(am["30s"]["idle"]),
        ),
        (
            f"… under {opts.rate:,.0f}/s background",
            latency(wf["load"]),
            latency(am["0s"]["load"]),
            latency(am["30s"]["load"]),
        ),
        (
            "ingest, batches of 1 000",
            ingest_cell(wf["ingest"], "events"),
            ingest_cell(am["ingest"], "alerts"),
            "(same API)",
        ),
        (
            f"storm: {opts.storm:,} signals, 10 subjects, 10 s",
            storm_cell(wf["storm"]),
            storm_cell(am["0s"]["storm"]),
            storm_cell(am["30s"]["storm"]),
        ),
    ]
    head = ("", "Watchfloor", "Alertmanager group_wait 0s", "Alertmanager group_wait 30s")
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


async def run(opts: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    binary = alertmanager.find_or_fetch()
    print(f"alertmanager: {binary} ({alertmanager.version(binary)})", flush=True)
    rx = Receiver()
    runner = web.AppRunner(rx.app(), access_log=None)
    await runner.setup()
    port = alertmanager.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver = f"http://127.0.0.1:{port}"
    try:
        wf = await watchfloor_side(rx, receiver, opts)
        am = await alertmanager_side(rx, receiver, opts, binary)
    finally:
        await runner.cleanup()
    return wf, am


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per configuration")
    parser.add_argument("--rate", type=float, default=10_000, help="background events/s")
    parser.add_argument("--storm", type=int, default=10_000, help="signals in the storm")
    parser.add_argument("--producers", type=int, default=2, help="ingest producer processes")
    parser.add_argument("--in-flight", type=int, default=4, help="requests per producer")
    parser.add_argument("--batches", type=int, default=150, help="ingest batches a producer")
    parser.add_argument("--lateness", type=float, default=5.0)
    parser.add_argument("--eval-interval", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="50 trials, 50 ingest batches")
    parser.add_argument("--write", action="store_true", help="into docs/BENCHMARKS.md")
    parser.add_argument("--am-load", nargs=2, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.trials, opts.batches = min(opts.trials, 50), min(opts.batches, 50)
    return opts


def details(wf: dict[str, Any]) -> list[str]:
    """Where Watchfloor's time goes: POST -> incident written (the change's stream id) ->
    notification received; and what its storm notifications were."""
    lines = []
    for name in ("idle", "load"):
        part = wf[name]
        lines.append(
            f"- Watchfloor {name}: POST → incident in Redis {latency(part['detect'])}; "
            f"incident in Redis → notification {latency(part['notify'])}; the changes "
            f"stream (which the pager follows) took {part['changes_per_s']:,.0f} changes/s."
        )
    lines.append(f"- Watchfloor engine lag at the end of the loaded trials: {wf.get('lag_s')} s.")
    what = ", ".join(f"{n} {w}" for w, n in sorted(wf["storm"]["what"].items()))
    lines.append(f"- Watchfloor storm notifications (purpose/event): {what or 'none'}.")
    return lines


def command(opts: argparse.Namespace) -> str:
    parts = ["python -m bench.peers"]
    if opts.quick:
        parts.append("--quick")
    if opts.trials not in (200, 50):
        parts.append(f"--trials {opts.trials}")
    if opts.rate != 10_000:
        parts.append(f"--rate {opts.rate:.0f}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> None:
    opts = parse(argv)
    if opts.am_load:
        asyncio.run(am_background(opts.am_load[0], float(opts.am_load[1])))
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    where = machine()
    wf, am = asyncio.run(run(opts))
    load = wf.get("load_rate") or 0.0
    text = "\n".join(
        [
            f"Command: `{command(opts)}` — {started}; machine: {where} (at the start);",
            f"{alertmanager.version(alertmanager.find_or_fetch())}.",
            f"Watchfloor: allowed lateness {opts.lateness:g} s, evaluation every "
            f"{opts.eval_interval:g} s, `[lifecycle] cap_per_minute` raised for the trials; "
            f"background load accepted by the collector: {load:,.0f} events/s.",
            "",
            *table(wf, am, opts),
            "",
            *details(wf),
        ]
    )
    print("\n" + text)
    if opts.write:
        replace_section("peers", text)
        print("\nwritten to docs/BENCHMARKS.md (peers section)")


if __name__ == "__main__":
    main()
