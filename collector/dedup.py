"""Duplicate suppression: an event ``id`` seen from the same source recently is dropped.

The memory lives in Redis so that several collector processes agree. Each
source has one Redis set per time bucket as long as the window
(``wf:dedup:{source}:{bucket}``); an id counts as seen if it is in the current
or the previous bucket, so every id is remembered for at least the window
(10 minutes by default) and at most twice that. One Lua script per source and
batch checks and records all ids at once: a single round trip with the ids as
arguments, which costs far less client CPU than one pipelined ``SET NX EX``
per event, and is atomic, so two collectors racing on the same id cannot both
accept it. Ids repeated inside one batch are caught by the same script. The
ids travel as one newline-joined argument and are checked with two
``SMISMEMBER`` and one ``SADD`` (C loops inside Redis) rather than a call per
id; ``bench/ingest.py`` measures what suppression costs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis

from core import keys
from core.events import Event

logger = logging.getLogger(__name__)

# KEYS: current bucket, previous bucket. ARGV[1] = ttl in seconds; ARGV[2] = "j" and
# ARGV[3] = the ids joined by newlines (one argument: cheap to send), or ARGV[2] = "a"
# and ARGV[3..] = the ids (when an id itself holds a newline). Returns one character
# per id: "1" seen before (or earlier in the same call), "0" new.
_SCRIPT = """
local ids = {}
if ARGV[2] == 'j' then
  for id in string.gmatch(ARGV[3], '[^\\n]+') do ids[#ids + 1] = id end
else
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local out = {}
for s = 1, #ids, 4000 do
  local chunk = {unpack(ids, s, math.min(s + 3999, #ids))}
  local prev = redis.call('SMISMEMBER', KEYS[2], unpack(chunk))
  local cur = redis.call('SMISMEMBER', KEYS[1], unpack(chunk))
  redis.call('SADD', KEYS[1], unpack(chunk))
  local seen = {}
  for i = 1, #chunk do
    local id = chunk[i]
    if prev[i] == 1 or cur[i] == 1 or seen[id] then
      out[#out + 1] = '1'
    else
      out[#out + 1] = '0'
      seen[id] = true
    end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return table.concat(out)
"""


class Deduplicator:
    """Filters out events whose ``(source, id)`` was seen within ``window_s``."""

    def __init__(self, redis: Redis, window_s: float = 600.0) -> None:
        self._redis = redis
        self._window = max(1, int(window_s))
        self._script = redis.register_script(_SCRIPT)

    async def filter(
        self, events: Sequence[Event], now: float | None = None
    ) -> tuple[list[Event], dict[str, int]]:
        """The events not seen before (order kept) and the duplicates counted per source.

        Raises Redis connection errors: the caller decides what to do without Redis.
        """
        by_source: dict[str, list[int]] = defaultdict(list)
        for i, event in enumerate(events):
            if event.id is not None:
                by_source[event.source].append(i)
        if not by_source:
            return list(events), {}
        bucket = int((time.time() if now is None else now) // self._window)
        ttl = str(2 * self._window + 60)
        calls = [
            self._check(source, [events[i].id for i in idx], bucket, ttl)  # type: ignore[misc]
            for source, idx in by_source.items()
        ]
        flags = await asyncio.gather(*calls)
        drop: set[int] = set()
        dups: dict[str, int] = {}
        for (source, idx), seen in zip(by_source.items(), flags, strict=True):
            hits = [i for i, flag in zip(idx, seen, strict=True) if flag == "1"]
            if hits:
                drop.update(hits)
                dups[source] = len(hits)
        if not drop:
            return list(events), {}
        return [e for i, e in enumerate(events) if i not in drop], dups

    async def _check(self, source: str, ids: list[str], bucket: int, ttl: str) -> str:
        joined = "\n".join(ids)
        args = [ttl, "j", joined] if joined.count("\n") == len(ids) - 1 else [ttl, "a", *ids]
        keys_ = [_bucket_key(source, bucket), _bucket_key(source, bucket - 1)]
        # One EVALSHA per source: redis-py's Script object on a pipeline would add a
        # SCRIPT EXISTS round trip to every batch.
        result = await self._script(keys=keys_, args=args)
        return result.decode() if isinstance(result, bytes) else str(result)


def _bucket_key(source: str, bucket: int) -> str:
    return keys.dedup_bucket(source, bucket)
