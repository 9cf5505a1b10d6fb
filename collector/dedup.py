"""Duplicate suppression recorded atomically with the write of the batch.

An event ``id`` seen from the same source recently is dropped. The memory lives
in Redis so that several collector processes agree: each source has one Redis
set per time bucket as long as the window (``wf:dedup:{source}:{bucket}``); an
id counts as seen if it is in the current or the previous bucket, so every id
is remembered for at least the window (10 minutes by default) and at most
twice that.

Why one script: recording an id as seen and writing its event must happen
together. Recorded first and written later, a crash in between made the
producer's resend a "duplicate" of an event that was never stored; written
first and recorded later, the resend was stored twice. :meth:`Deduplicator.write`
runs one Lua script that checks the ids, ``XADD``\\ s the events not seen (one
stream entry, the msgpack array built from the events' own msgpack bytes) and
records their ids; Redis runs it atomically and replicates/persists its effects
as one transaction, so either all of it happened or none. A resend, or the
replay of a spooled batch whose answer was lost, then finds exactly the ids
that were stored. Ids repeated inside one batch are caught by the same script.
Events without ``id`` cannot be recognised again: they are stored at least once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
from redis.asyncio import Redis

from core import keys
from core.events import Event

# KEYS[1] = the stream; KEYS[2s], KEYS[2s+1] = current and previous bucket of source s.
# ARGV[1] = ttl (s), ARGV[2] = MAXLEN ~ cap ("0": none), ARGV[3] = n, then per event
# (source number, 0 = no id; id; the event's msgpack bytes). Returns {entry id or
# nil, one character per event: "1" duplicate, "0" kept}.
_SCRIPT = """
local n = tonumber(ARGV[3])
local kept, flags, fresh, seen = {}, {}, {}, {}
for i = 1, n do
  local at = 3 + (i - 1) * 3
  local src, id = tonumber(ARGV[at + 1]), ARGV[at + 2]
  local dup = false
  if src > 0 then
    local tag = src .. ':' .. id
    if seen[tag] or redis.call('SISMEMBER', KEYS[2 * src], id) == 1
       or redis.call('SISMEMBER', KEYS[2 * src + 1], id) == 1 then
      dup = true
    else
      seen[tag] = true
      fresh[src] = fresh[src] or {}
      fresh[src][#fresh[src] + 1] = id
    end
  end
  if dup then flags[i] = '1' else flags[i] = '0'; kept[#kept + 1] = ARGV[at + 3] end
end
local entry = false
local k = #kept
if k > 0 then
  local head
  if k < 16 then head = string.char(0x90 + k)
  elseif k < 65536 then head = string.char(0xdc, math.floor(k / 256), k % 256)
  else head = string.char(0xdd, math.floor(k / 16777216) % 256, math.floor(k / 65536) % 256,
                          math.floor(k / 256) % 256, k % 256) end
  local payload = head .. table.concat(kept)
  if ARGV[2] == '0' then
    entry = redis.call('XADD', KEYS[1], '*', 'b', payload)
  else
    entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'b', payload)
  end
  for src, ids in pairs(fresh) do
    for s = 1, #ids, 4000 do
      redis.call('SADD', KEYS[2 * src], unpack(ids, s, math.min(s + 3999, #ids)))
    end
    redis.call('EXPIRE', KEYS[2 * src], ARGV[1])
  end
end
return {entry, table.concat(flags)}
"""

_ENCODER = msgspec.msgpack.Encoder()


@dataclass(slots=True)
class Written:
    """What one atomic write kept and dropped."""

    kept: list[Event]
    entry_id: str | None = None
    """Stream id of the entry written (``None`` when every event was a duplicate)."""
    duplicates: dict[str, int] = field(default_factory=dict)
    """Events dropped as duplicates, per source."""


class Deduplicator:
    """Writes batches to the events stream, dropping ``(source, id)`` seen within ``window_s``."""

    def __init__(
        self,
        redis: Redis,
        window_s: float = 600.0,
        *,
        stream: str = keys.EVENTS,
        maxlen: int = 0,
    ) -> None:
        self.redis = redis
        self._window = max(1, int(window_s))
        self.stream = stream
        self.maxlen = maxlen
        self._script = redis.register_script(_SCRIPT)

    async def write(self, events: Sequence[Event], now: float | None = None) -> Written:
        """Atomically drop the duplicates, write the rest as one entry and record their ids.

        Raises Redis connection errors: the caller spools the batch, and the
        replay runs this again (a script that ran but whose answer was lost is
        then recognised: its ids are recorded).
        """
        sources: dict[str, int] = {}
        args: list[str | bytes] = []
        for event in events:
            number = 0 if event.id is None else sources.setdefault(event.source, len(sources) + 1)
            args += [str(number), event.id or "", _ENCODER.encode(event)]
        bucket = int((time.time() if now is None else now) // self._window)
        keys_ = [self.stream]
        for source in sources:
            keys_ += [keys.dedup_bucket(source, bucket), keys.dedup_bucket(source, bucket - 1)]
        head = [str(2 * self._window + 60), str(self.maxlen), str(len(events))]
        entry, flags = await self._script(keys=keys_, args=[*head, *args])
        return _written(events, entry, flags)


def _written(events: Sequence[Event], entry: bytes | None, flags: bytes | str) -> Written:
    marks = flags.decode() if isinstance(flags, bytes) else str(flags)
    out = Written([], entry.decode() if isinstance(entry, bytes) else entry)
    for event, mark in zip(events, marks, strict=True):
        if mark == "1":
            out.duplicates[event.source] = out.duplicates.get(event.source, 0) + 1
        else:
            out.kept.append(event)
    return out
