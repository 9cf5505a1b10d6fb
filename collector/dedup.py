"""Duplicate suppression: an event ``id`` seen from the same source recently is dropped.

The memory lives in Redis so that several collector processes agree. Each
source has one Redis set per time bucket as long as the window
(``wf:dedup:{source}:{bucket}``); an id counts as seen if it is in the current
or the previous bucket, so every id is remembered for at least the window
(10 minutes by default) and at most twice that. One Lua script per source and
batch checks and records all ids at once: a single round trip with the ids as
arguments, which costs far less client CPU than one pipelined ``SET NX EX``
per event (measured in ``bench/ingest.py``), and is atomic, so two collectors
racing on the same id cannot both accept it. Ids repeated inside one batch are
caught by the same script.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis

from core import keys
from core.events import Event

logger = logging.getLogger(__name__)

# ARGV[1] = ttl in seconds, ARGV[2..] = ids. Returns one char per id: "1" seen, "0" new.
_SCRIPT = """
local cur, prev = KEYS[1], KEYS[2]
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('SISMEMBER', prev, id) == 1 or redis.call('SADD', cur, id) == 0 then
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
redis.call('EXPIRE', cur, ARGV[1])
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
        drop: set[int] = set()
        dups: dict[str, int] = {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for source, idx in by_source.items():
                ids = [events[i].id for i in idx]
                key_cur, key_prev = _bucket_key(source, bucket), _bucket_key(source, bucket - 1)
                await self._script(keys=[key_cur, key_prev], args=[ttl, *ids], client=pipe)
            flags = await pipe.execute()
        for (source, idx), seen in zip(by_source.items(), flags, strict=True):
            seen_text = seen.decode() if isinstance(seen, bytes) else str(seen)
            hits = [i for i, flag in zip(idx, seen_text, strict=True) if flag == "1"]
            if hits:
                drop.update(hits)
                dups[source] = len(hits)
        if not drop:
            return list(events), {}
        return [e for i, e in enumerate(events) if i not in drop], dups


def _bucket_key(source: str, bucket: int) -> str:
    return f"{keys.dedup(source)}:{bucket}"
