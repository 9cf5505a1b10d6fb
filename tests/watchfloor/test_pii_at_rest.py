"""No customer PII in clear at rest: known PII sent through the real stack is found nowhere.

`watchfloor up --headless` runs on a persistent Redis whose data lives inside the data
directory. Known PII (a resident ID with a valid check digit, a Luhn-valid bank card,
mobiles, a name) goes through the collector in agent messages to and from customers, a
`data.access` resource and a social mention; a leak incident opens, the monitor
checkpoints, a handover report and an audit bundle are exported to files, the stack stops
cleanly; a second run loses its Redis (the collector spools a batch) and is SIGKILLed. After
each, every byte of the data directory (AOF, spool, logs,
audit, keys...) and of Redis (``DUMP`` of every key and its values) is scanned for each
PII string in its UTF-8, GBK, UTF-16, JSON-escaped and separated-digit forms, inside
zlib streams too. The clear-text byte count must be zero.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import redis as sync_redis

from tests.watchfloor.test_up import wait_for
from watchfloor.core import engine_status, keys
from watchfloor.core.redis_client import connect_sync
from watchfloor.core.redis_server import EmbeddedRedis, free_port

pytestmark = pytest.mark.slow

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def resident_id(first17: str) -> str:
    """A GB 11643 resident ID with its ISO 7064 MOD 11-2 check digit."""
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return first17 + ID_CHECK[total % 11]


def luhn_card(first: str) -> str:
    """``first`` plus the Luhn check digit."""
    for check in "0123456789":
        digits = first + check
        total = 0
        for i, c in enumerate(reversed(digits)):
            d = int(c) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


AGENT_ID = resident_id("11010519880716432")  # the leaking agent's customer's ID
AGENT_CARD = luhn_card("622202123456789012")  # 19-digit UnionPay
AGENT_MOBILE = "13912347788"
CUSTOMER_ID = resident_id("31011519920304281")
CUSTOMER_MOBILE = "18655501234"
ACCESS_ID = resident_id("44030619750612501")
ACCESS_MOBILE = "15077708899"
SOCIAL_MOBILE = "17766602468"
SOCIAL_NAME = "欧阳晓春"
PII = [AGENT_ID, AGENT_CARD, AGENT_MOBILE, CUSTOMER_ID, CUSTOMER_MOBILE, ACCESS_ID,
       ACCESS_MOBILE, SOCIAL_MOBILE, SOCIAL_NAME]  # fmt: skip


def dashed(mobile: str) -> str:
    return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"


def pii_events(tag: str, now: float) -> list[dict]:
    spaced_card = " ".join(AGENT_CARD[i : i + 4] for i in range(0, len(AGENT_CARD), 4))
    base = {"source": "pii-test", "channel": "chat"}
    return [
        {**base, "type": "agent.message", "id": f"{tag}-1", "ts": now,
         "agent_id": "agent-007", "conversation_id": f"c-{tag}-1", "direction": "to_customer",
         "text": f"您的身份证号 {AGENT_ID}，银行卡 {spaced_card}，手机 {AGENT_MOBILE}"},
        {**base, "type": "agent.message", "id": f"{tag}-2", "ts": now + 0.1,
         "agent_id": "agent-007", "conversation_id": f"c-{tag}-1", "direction": "internal",
         "text": f"card {AGENT_CARD} mobile {dashed(AGENT_MOBILE)}"},
        {**base, "type": "agent.message", "id": f"{tag}-3", "ts": now + 0.2,
         "agent_id": "agent-012", "conversation_id": f"c-{tag}-2", "direction": "from_customer",
         "text": f"我的身份证是{CUSTOMER_ID}，电话{CUSTOMER_MOBILE}"},
        {"type": "data.access", "id": f"{tag}-4", "ts": now + 0.3, "source": "pii-test",
         "actor": "crm-bulk", "action": "export", "records": 50_000,
         "resource": f"crm/customers?id={ACCESS_ID}&mobile={ACCESS_MOBILE}"},
        {"type": "social.mention", "id": f"{tag}-5", "ts": now + 0.4, "source": "pii-test",
         "platform": "weibo", "topic": "shop", "author": f"{SOCIAL_NAME}{SOCIAL_MOBILE}",
         "followers": 900_000, "sentiment": -0.9,
         "text": f"客服把我的电话{SOCIAL_MOBILE}给了别人，我要投诉曝光，太差了"},
    ]  # fmt: skip


# --- the scan ----------------------------------------------------------------------------


def forms(value: str) -> set[bytes]:
    """The byte forms a clear value could take at rest."""
    texts = {value}
    if value.isdigit() or value[:-1].isdigit():
        for sep in (" ", "-"):
            texts.add(sep.join(value[i : i + 4] for i in range(0, len(value), 4)))
        if len(value) == 11:
            texts |= {f"{value[:3]}{s}{value[3:7]}{s}{value[7:]}" for s in (" ", "-")}
    out: set[bytes] = set()
    for text in texts:
        out |= {text.encode("utf-8"), text.encode("utf-16-le"), text.encode("gbk")}
        out.add(json.dumps(text).strip('"').encode())
    return out


def inflated(blob: bytes) -> Iterator[bytes]:
    """Every zlib stream inside ``blob`` (a compressed checkpoint hides text otherwise)."""
    for header in (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"):
        start = blob.find(header)
        while start != -1:
            with contextlib.suppress(zlib.error):  # not a stream after all
                yield zlib.decompressobj().decompress(blob[start:], 64 << 20)
            start = blob.find(header, start + 1)


def hits_in(blob: bytes, where: str) -> list[tuple[str, str, int]]:
    found = []
    for layer in (blob, *inflated(blob)):
        for value in PII:
            for form in forms(value):
                count = layer.count(form)
                if count:
                    found.append((where, value, count * len(form)))
    return found


def scan_files(*roots: Path) -> list[tuple[str, str, int]]:
    found = []
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            found += hits_in(path.read_bytes(), str(path))
    return found


def scan_redis(url: str) -> list[tuple[str, str, int]]:
    client = connect_sync(url)
    found = []
    try:
        for key in client.scan_iter(count=1000):
            dumped = client.dump(key) or b""
            found += hits_in(dumped + b"\0" + _values(client, key), f"redis:{key!r}")
    finally:
        client.close()
    return found


def _values(client: sync_redis.Redis, key: bytes) -> bytes:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key) or b""
    if kind == "hash":
        return b"\0".join(k + b"\0" + v for k, v in client.hgetall(key).items())
    if kind == "stream":
        return b"\0".join(repr(e).encode() + b"\0".join(e[1].values())
                          for e in client.xrange(key))  # fmt: skip
    if kind == "zset":
        return b"\0".join(m for m, _ in client.zrange(key, 0, -1, withscores=True))
    if kind == "list":
        return b"\0".join(client.lrange(key, 0, -1))
    if kind == "set":
        return b"\0".join(client.smembers(key))
    return b""


def report(found: list[tuple[str, str, int]]) -> str:
    total = sum(n for *_, n in found)
    lines = [f"{total} clear-text PII bytes at rest:"]
    lines += [f"  {where}: {value} ({n} bytes)" for where, value, n in found]
    return "\n".join(lines)


def loose_files(data_dir: Path) -> list[str]:
    """Files or directories the product wrote that others may read."""
    loose = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = path.stat().st_mode
        public_key = path.name.endswith(".pub.pem")
        if mode & 0o077 and not public_key and not stat.S_ISLNK(mode):
            loose.append(f"{path} {oct(mode & 0o777)}")
    return loose


# --- the stack ---------------------------------------------------------------------------


def start_up(data_dir: Path, url: str, api_port: int, collector_port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "watchfloor", "up", "--headless", "--data-dir", str(data_dir),
         "--redis", url, "--api-port", str(api_port), "--collector-port", str(collector_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def call(url: str, token: str, body: object = None) -> dict:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def evaluated(url: str, count: int) -> bool:
    """The monitor folded ``count`` events in and committed a checkpoint past them."""
    client = connect_sync(url)
    try:
        if int(engine_status.read_sync(client).get("events", 0)) < count:
            return False
        for shard in range(int(client.get(keys.SHARDS) or 0)):
            newest = client.xrevrange(keys.events_shard(shard), count=1)
            last = client.hget(keys.engine_status(shard), "last_id")
            if newest and (last is None or last.decode() != newest[0][0].decode()):
                return False  # this shard's engine has not committed past its newest entry
        return True
    finally:
        client.close()


def cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "watchfloor", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


class Stack(NamedTuple):
    proc: subprocess.Popen
    collector: str
    token: str


def run_and_feed(data_dir: Path, url: str, tag: str, sent_before: int) -> Stack:
    api_port, collector_port = free_port(), free_port()
    proc = start_up(data_dir, url, api_port, collector_port)
    token_file = data_dir / "tokens" / "admin.token"
    wait_for(token_file.exists, 60, "admin token", proc)
    token = token_file.read_text().strip()
    events = pii_events(tag, time.time())
    collector = f"http://127.0.0.1:{collector_port}/v1/events"
    wait_for(lambda: call(collector, token, events)["accepted"], 60, "collector", proc)
    api = f"http://127.0.0.1:{api_port}/v1/incidents?state=all"

    def leak_and_opinion_opened() -> bool:
        rules = {i["rule"] for i in call(api, token)["incidents"]}
        # the high-reach post's incident carries its excerpt and author (masked)
        return {"leak.pii_in_message", "leak.bulk_export", "opinion.topic"} <= rules

    wait_for(leak_and_opinion_opened, 60, "leak and opinion incidents", proc)
    wait_for(lambda: evaluated(url, sent_before + len(events)), 60, "checkpoint", proc)
    return Stack(proc, collector, token)


def spool_while_redis_is_down(stack: Stack, redis: EmbeddedRedis, spool: Path) -> None:
    """The collector keeps what it accepts in its spool while Redis is unreachable."""
    redis.stop()
    events = pii_events("c", time.time())
    accepted = wait_for(lambda: call(stack.collector, stack.token, events)["accepted"], 30,
                        "a batch accepted without Redis", stack.proc)  # fmt: skip
    assert accepted == len(events)

    def spooled() -> bool:
        return any(p.stat().st_size for p in spool.rglob("*") if p.is_file())

    wait_for(spooled, 10, "the spooled batch on disk", stack.proc)


def test_known_pii_sent_through_the_stack_is_nowhere_in_clear_at_rest(tmp_path: Path) -> None:
    data_dir = tmp_path / "wf"
    exports = tmp_path / "exports"
    exports.mkdir()
    redis = EmbeddedRedis(data_dir / "redis", log_file=data_dir / "logs" / "redis.log")
    redis.start()
    try:
        # 1. clean stop, with exports written to files
        proc = run_and_feed(data_dir, redis.url, "a", 0).proc
        try:
            common = ["--data-dir", str(data_dir), "--redis", redis.url]
            cli("handover", *common, "--out", str(exports / "handover.md"))
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        # a clean stop signs the audit log up to its last record
        cli("audit", "export", *common, "--since", "1", "--out", str(exports / "audit.json"))
        found = scan_redis(redis.url) + scan_files(data_dir, exports)
        assert found == [], "after a clean stop: " + report(found)

        # 2. Redis lost (the collector spools), then killed: all it wrote is sealed too
        stack = run_and_feed(data_dir, redis.url, "b", len(pii_events("a", 0.0)))
        try:
            spool_while_redis_is_down(stack, redis, data_dir / "spool")
        finally:
            stack.proc.send_signal(signal.SIGKILL)
            stack.proc.communicate(timeout=60)
        time.sleep(1.0)  # the children die with their parent
        log = (data_dir / "logs" / "monitor.log").read_text(encoding="utf-8")
        assert "resumed from checkpoint" in log and "checkpoint unreadable" not in log, log
        found = scan_files(data_dir, exports)
        assert found == [], "after SIGKILL: " + report(found)
        loose = loose_files(data_dir)
        assert loose == [], "readable by others:\n" + "\n".join(loose)
        assert all(p.stat().st_mode & 0o077 == 0 for p in exports.iterdir())
    finally:
        redis.stop()
