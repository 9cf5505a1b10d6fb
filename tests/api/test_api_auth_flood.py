"""A bad-token flood from one address against the real monitor API, with a viewer beside it.

The API's Redis client has a bounded pool (16 connections, as a production
client would) so that exhausting it shows as the viewer's 503s. The flood is
300 concurrent connections sending fresh random tokens for a bounded time;
every refusal past the limit must be cheap: no audit record each, one summary
per address and window, and the viewer's requests all answered 200.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.api.test_api_support import start_api

FLOOD_CONNECTIONS = 300
FLOOD_SECONDS = 3.0
LIMIT = 10


async def flood(url: str, deadline: float) -> Counter[int]:
    """Fresh random tokens (the worst case: no refused-token memory helps) until ``deadline``."""
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=FLOOD_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def attacker() -> None:
            while time.monotonic() < deadline:
                headers = {"Authorization": f"Bearer wf_{secrets.token_hex(16)}"}
                try:
                    async with session.get(url + "/v1/incidents", headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except aiohttp.ClientError:
                    statuses[0] += 1

        await asyncio.gather(*(attacker() for _ in range(FLOOD_CONNECTIONS)))
    return statuses


async def viewer(url: str, tokens: list[str], deadline: float) -> list[int]:
    """A console polling the board; the last token is used for the first time mid-flood."""
    statuses = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for token in tokens:
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(url + "/v1/incidents", headers=headers) as resp:
                    statuses.append(resp.status)
            await asyncio.sleep(0.05)
    return statuses


async def test_a_bad_token_flood_is_refused_cheaply_while_a_viewer_is_served(
    redis_url: str, data_dir: Path
) -> None:
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    api, redis = await start_api(redis_url, serve, data_dir, auth_fail_limit=LIMIT,
                                 redis_options={"max_connections": 16})  # fmt: skip
    try:
        assert (await api.call("GET", "/v1/incidents", "viewer"))[0] == 200
        late_token, _ = await api.token_store.create("late-console", "security_officer")
        start = time.monotonic()
        deadline = start + FLOOD_SECONDS
        attacked, served, late = await asyncio.gather(
            flood(api.url, deadline), viewer(api.url, [api.tokens["viewer"]], deadline + 0.5),
            late_first_use(api.url, late_token, start + FLOOD_SECONDS / 2),
        )  # fmt: skip
        elapsed = time.monotonic() - start
    finally:
        await api.session.close()
        for runner in runners:
            await runner.cleanup()  # the open window is summed up at shutdown
    records = await api.audit.read(0, 10_000)
    await redis.aclose()
    report(attacked, served, records, elapsed)
    assert served and set(served) == {200} and late == 200, Counter(served)
    assert set(attacked) <= {401, 429, 503}, attacked
    assert attacked[401] == LIMIT
    failed = [r for r in records if r["action"] == "auth.failed"]
    summaries = [r for r in records if r["action"] == "auth.throttled"]
    assert len(failed) == LIMIT and len(summaries) == 1
    details = summaries[0]["details"]
    assert details["throttled"] == attacked[429] and details["failures"] == LIMIT + attacked[429]
    assert all(len(r["target"]) <= 200 for r in records)


async def late_first_use(url: str, token: str, at: float) -> int:
    """A token never seen before, used first in the middle of the flood."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(url + "/v1/incidents", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            return resp.status


def report(attacked: Counter[int], served: list[int], records: list[dict], elapsed: float) -> None:
    """Printed with ``-s``: the figures quoted in the issue note."""
    total = sum(attacked.values())
    print(
        f"\nflood: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s) {dict(attacked)}"
    )
    print(f"viewer: {dict(Counter(served))}; audit records: "
          f"{dict(Counter(r['action'] for r in records))}")  # fmt: skip
