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
runs one Lua script that checks the batch's ids and, only if none was seen
(in the buckets or earlier in the batch), ``XADD``\\ s the batch and records
its ids; Redis runs it atomically and persists its effects as one
transaction, so either all of it happened or none. When some ids were seen,
the script writes nothing and says which: the writer drops those events and
calls it again with the rest (duplicates are rare: resends). A resend, or the
replay of a spooled batch whose answer was lost, then finds exactly the ids
that were stored. Events without ``id`` cannot be recognised again: they are
stored at least once.

The ids travel as one newline-joined argument per source (a msgpack array
when an id holds a newline) and are checked with two ``SMISMEMBER`` and one
``SADD`` per source, C loops inside Redis; a few thousand script arguments, or
rebuilding the batch inside Lua, would cost milliseconds per batch
(``bench/ingest.py`` measures what suppression costs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis.asyncio import Redis

from watchfloor.core import keys
from watchfloor.core.events import Event, encode_batch

# KEYS[1] = the stream; KEYS[2s], KEYS[2s+1] = current and previous bucket of source s.
# ARGV[1] = ttl (s), ARGV[2] = MAXLEN ~ cap ("0": none), ARGV[3] = the encoded batch,
# ARGV[3+s] = the ids of source s: "j" + ids joined by newlines, or "m" + msgpack array.
# Returns {entry id, or nil when something was seen and nothing written; one character
# per id, sources in order: "1" seen before or earlier in the batch, "0" new}.
_SCRIPT = """
local sources = (#KEYS - 1) / 2
local all_ids, flags, seen_any = {}, {}, false
for s = 1, sources do
  local arg, ids = ARGV[3 + s], {}
  if string.sub(arg, 1, 1) == 'j' then
    for id in string.gmatch(string.sub(arg, 2), '[^\\n]+') do ids[#ids + 1] = id end
  else
    ids = cmsgpack.unpack(string.sub(arg, 2))
  end
  all_ids[s] = ids
  local seen = {}
  for c = 1, #ids, 4000 do
    local chunk = {unpack(ids, c, math.min(c + 3999, #ids))}
    local cur = redis.call('SMISMEMBER', KEYS[2 * s], unpack(chunk))
    local prev = redis.call('SMISMEMBER', KEYS[2 * s + 1], unpack(chunk))
    for j = 1, #chunk do
      local id = chunk[j]
      if cur[j] == 1 or prev[j] == 1 or seen[id] then
        flags[#flags + 1] = '1'
        seen_any = true
      else
        flags[#flags + 1] = '0'
        seen[id] = true
      end
    end
  end
end
if seen_any then return {false, table.concat(flags)} end
local entry
if ARGV[2] == '0' then
  entry = redis.call('XADD', KEYS[1], '*', 'b', ARGV[3])
else
  entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'b', ARGV[3])
end
for s = 1, sources do
  local ids = all_ids[s]
  for c = 1, #ids, 4000 do
    redis.call('SADD', KEYS[2 * s], unpack(ids, c, math.min(c + 3999, #ids)))
  end
  redis.call('EXPIRE', KEYS[2 * s], ARGV[1])
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
        self._cap: dict[str, Any] = {"maxlen": maxlen, "approximate": True} if maxlen else {}

    async def write(self, events: Sequence[Event], now: float | None = None) -> Written:
        """Atomically drop the duplicates, write the rest as one entry and record their ids.

        Raises Redis connection errors: the caller spools the batch, and the
        replay runs this again (a script that ran but whose answer was lost is
        then recognised: its ids are recorded).
        """
        batch = list(events)
        if all(event.id is None for event in batch):  # nothing to check or record
            raw = await self.redis.xadd(self.stream, {b"b": encode_batch(batch)}, **self._cap)
            return Written(batch, raw.decode() if isinstance(raw, bytes) else str(raw))
        bucket = int((time.time() if now is None else now) // self._window)
        out = Written([])
        while batch:
            entry, seen = await self._attempt(batch, bucket)
            if entry is not None:
                out.entry_id, out.kept = entry, batch
                break
            # Something was seen: nothing was written. Drop it and try the rest.
            for i in seen:
                source = batch[i].source
                out.duplicates[source] = out.duplicates.get(source, 0) + 1
            batch = [event for i, event in enumerate(batch) if i not in seen]
        return out

    async def _attempt(self, batch: list[Event], bucket: int) -> tuple[str | None, set[int]]:
        """One script call: (entry id, nothing) if written, else (None, positions seen)."""
        by_source: dict[str, list[int]] = {}
        for i, event in enumerate(batch):
            if event.id is not None:
                by_source.setdefault(event.source, []).append(i)
        keys_ = [self.stream]
        ttl = str(2 * self._window + 60)
        args: list[str | bytes] = [ttl, str(self.maxlen), encode_batch(batch)]
        for source, positions in by_source.items():
            keys_ += [keys.dedup_bucket(source, bucket), keys.dedup_bucket(source, bucket - 1)]
            args.append(_ids_arg([batch[i].id for i in positions]))  # type: ignore[misc]
        entry, flags = await self._script(keys=keys_, args=args)
        if entry is not None:
            return (entry.decode() if isinstance(entry, bytes) else str(entry)), set()
        marks = flags.decode() if isinstance(flags, bytes) else str(flags)
        ordered = [i for positions in by_source.values() for i in positions]
        return None, {i for i, mark in zip(ordered, marks, strict=True) if mark == "1"}


def _ids_arg(ids: list[str]) -> bytes:
    joined = "\n".join(ids)
    if joined.count("\n") == len(ids) - 1:
        return b"j" + joined.encode()
    return b"m" + _ENCODER.encode(ids)
