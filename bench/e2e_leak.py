"""End to end for a leak event: ``bench/e2e.py``'s stack and background load, measuring an
agent's chat message with a customer's resident ID (an early-fired rule) instead of an outage.

One message every 6.2 s, so that the incident cap (10 new incidents per rule per minute) is
not reached. Same options as ``bench/e2e.py``.

Run: python bench/e2e_leak.py [--probes 20] [--rate 10000]
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import e2e

TEXT = "您好，已为您登记，身份证号11010519491231002X，手机13812345678"


async def leak_probe(
    session: aiohttp.ClientSession, stack: Any, n: int, seen: dict[str, float], headers: dict
) -> tuple[float, float]:
    agent = f"bench-agent-{n}-{secrets.token_hex(3)}"
    t0 = time.monotonic()
    batch = [
        {
            "type": "agent.message",
            "ts": time.time(),
            "source": "bench-im",
            "agent_id": agent,
            "conversation_id": f"conv-{n}",
            "channel": "chat",
            "direction": "to_customer",
            "text": TEXT,
        }
    ]
    async with session.post(stack.collector + "/v1/events", json=batch, headers=headers) as r:
        assert r.status in (200, 202), await r.text()
    url = f"{stack.api}/v1/incidents?kind=leak&subject={agent}"
    rest = None
    while rest is None and time.monotonic() - t0 < 30:
        async with session.get(url, headers=headers) as r:
            if (await r.json())["incidents"]:
                rest = time.monotonic() - t0
                break
        await asyncio.sleep(0.02)
    for _ in range(100):
        if agent in seen:
            break
        await asyncio.sleep(0.01)
    return seen.get(agent, float("nan")) - t0, rest if rest is not None else float("nan")


async def measure(stack: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {stack.token}"}
    seen: dict[str, float] = {}
    listener = asyncio.create_task(e2e.listen(stack, headers, seen))
    await asyncio.sleep(stack.args.warmup)
    lives, rests = [], []
    async with aiohttp.ClientSession() as session:
        for n in range(stack.args.probes):
            live, rest = await leak_probe(session, stack, n, seen, headers)
            lives.append(live)
            rests.append(rest)
            print(f"  leak {n + 1:3d}: live {live:6.3f} s  rest {rest:6.3f} s", flush=True)
            await asyncio.sleep(6.2 - min(live, rest) if live == live else 1)
        async with session.get(stack.api + "/healthz") as r:
            health = await r.json()
    listener.cancel()
    return {"live": lives, "rest": rests, "health": health}


if __name__ == "__main__":
    e2e.measure = measure  # the stack, load and report are bench/e2e.py's
    asyncio.run(e2e.main(e2e.parse()))
