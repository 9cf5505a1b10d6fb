"""Duplicate suppression recorded atomically with the write of the batch, per events shard.

An event ``id`` seen from the same source recently is dropped. The memory lives
in Redis so that several collector processes agree: each shard and source has
one Redis set per time bucket as long as the window
(``wf:dedup:{N}:{source}:{bucket}``); an id counts as seen if it is in the
current or the previous bucket, so every id is remembered for at least the
window (10 minutes by default) and at most twice that.

A batch is split by shard (``core.shards.split``: by the event's subject) and
each shard's part is written by one Lua script whose keys (the shard's stream,
its duplicate marks) all carry the shard's hash tag, so on a Redis Cluster it
runs on the one node holding that slot. The parts of one batch go out in one
pipelined round (redis-py's cluster client splits a pipeline per node); a
batch is acknowledged only once every part is written.

Why one script per part: recording an id as seen and writing its event must
happen together. Recorded first and written later, a crash in between made
the producer's resend a "duplicate" of an event that was never stored;
written first and recorded later, the resend was stored twice. The script
checks the part's ids and, only if none was seen (in the buckets or earlier in
the part), ``XADD``\\ s the part and records its ids; Redis runs it atomically
and persists its effects as one transaction, so either all of it happened or
none. When some ids were seen, the script writes nothing and says which: the
writer drops those events and writes the rest of that part in another round
(duplicates are rare: resends). Parts are independent: after a crash between
the shard writes of a batch (some parts stored, some not), the resend, or the
replay of a spooled batch, finds exactly the stored parts' ids and stores only
the others. Events without ``id`` cannot be recognised again: they are stored
at least once.

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
from redis.exceptions import NoScriptError

from watchfloor.collector import faults
from watchfloor.core import keys
from watchfloor.core.config import RedisConfig
from watchfloor.core.events import Event, encode_batch
from watchfloor.core.shards import check_count, ensure_count, split

# KEYS[1] = the stream; KEYS[2s], KEYS[2s+1] = current and previous bucket of source s.
# ARGV[1] = ttl (s), ARGV[2] = MAXLEN ~ cap ("0": none), ARGV[3] = the encoded part,
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
DEFAULT_SHARDS = RedisConfig().shards


@dataclass(slots=True)
class Written:
    """What one write of a batch kept and dropped."""

    kept: list[Event]
    """The events stored, in the batch's order."""
    entries: dict[int, str] = field(default_factory=dict)
    """Shard -> stream id of the entry written there (none for a part of only duplicates)."""
    duplicates: dict[str, int] = field(default_factory=dict)
    """Events dropped as duplicates, per source."""


@dataclass(frozen=True, slots=True)
class _Call:
    """One script call: a shard's part of the batch."""

    keys: list[str]
    args: list[str | bytes]
    order: list[int]
    """Batch positions of the part's events with an id, in the order of the script's flags."""


class Deduplicator:
    """Writes batches to the events shards, dropping ``(source, id)`` seen within ``window_s``."""

    def __init__(
        self,
        redis: Redis,
        window_s: float = 600.0,
        *,
        shards: int = DEFAULT_SHARDS,
        maxlen: int = 0,
    ) -> None:
        self.redis = redis
        self._window = max(1, int(window_s))
        self.shards = check_count(shards)
        self.maxlen = maxlen
        self._sha = redis.register_script(_SCRIPT).sha
        self._count_checked = False

    async def write(self, events: Sequence[Event], now: float | None = None) -> Written:
        """Split by shard, drop the duplicates, write each part as one entry with its ids.

        Returns once every part is written. Raises ``ShardError`` if this Redis was set
        up with another shard count (checked before the first write). Raises Redis
        errors (some parts may be written then): the caller spools the whole batch, and
        its replay runs this again, which finds the ids of the parts already written
        and skips them.
        """
        if not self._count_checked:  # once per process: never write by another shard count
            await ensure_count(self.redis, self.shards)
            self._count_checked = True
        batch = list(events)
        bucket = int((time.time() if now is None else now) // self._window)
        parts = split(batch, self.shards)
        out, kept = Written([]), []
        while parts:
            answers = await self._round(batch, parts, bucket)
            retry: dict[int, list[int]] = {}
            for shard, positions in parts.items():
                entry, seen = answers[shard]
                if entry is not None:
                    out.entries[shard] = entry
                    kept += positions
                    continue
                # Something was seen: nothing of this part was written. Drop it, retry the rest.
                for i in seen:
                    source = batch[i].source
                    out.duplicates[source] = out.duplicates.get(source, 0) + 1
                rest = [i for i in positions if i not in seen]
                if rest:
                    retry[shard] = rest
            if retry and out.entries:
                faults.reach("ingest.shard_written")  # some parts stored, others not yet
            parts = retry
        out.kept = [batch[i] for i in sorted(kept)]
        return out

    async def _round(
        self, batch: list[Event], parts: dict[int, list[int]], bucket: int
    ) -> dict[int, tuple[str | None, set[int]]]:
        """One pipelined round of script calls: shard -> (entry id, nothing) or (None, seen)."""
        calls = {shard: self._call(batch, shard, positions, bucket)
                 for shard, positions in parts.items()}  # fmt: skip
        replies = await self._run(list(calls.values()))
        return {
            shard: _answer(call, reply)
            for (shard, call), reply in zip(calls.items(), replies, strict=True)
        }

    def _call(self, batch: list[Event], shard: int, positions: list[int], bucket: int) -> _Call:
        part = [batch[i] for i in positions]
        by_source: dict[str, list[int]] = {}
        for i in positions:
            if batch[i].id is not None:
                by_source.setdefault(batch[i].source, []).append(i)
        keys_ = [keys.events_shard(shard)]
        args: list[str | bytes] = [str(2 * self._window + 60), str(self.maxlen), encode_batch(part)]
        for source, where in by_source.items():
            keys_ += [keys.dedup_bucket(shard, source, bucket),
                      keys.dedup_bucket(shard, source, bucket - 1)]  # fmt: skip
            args.append(_ids_arg([batch[i].id for i in where]))  # type: ignore[misc]
        return _Call(keys_, args, [i for where in by_source.values() for i in where])

    async def _run(self, calls: list[_Call]) -> list[Any]:
        """The replies of ``calls``, sent in one pipeline (``EVAL`` again where Redis forgot
        the script: a restart or a failover empties its script cache)."""
        pipe = self.redis.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(self._sha, len(call.keys), *call.keys, *call.args)
        replies = list(await pipe.execute(raise_on_error=False))
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for i in missing:
                pipe.eval(_SCRIPT, len(calls[i].keys), *calls[i].keys, *calls[i].args)
            again = await pipe.execute(raise_on_error=False)
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


def _answer(call: _Call, reply: Any) -> tuple[str | None, set[int]]:
    entry, flags = reply
    if entry is not None:
        return (entry.decode() if isinstance(entry, bytes) else str(entry)), set()
    marks = flags.decode() if isinstance(flags, bytes) else str(flags)
    return None, {i for i, mark in zip(call.order, marks, strict=True) if mark == "1"}


def _ids_arg(ids: list[str]) -> bytes:
    joined = "\n".join(ids)
    if joined.count("\n") == len(ids) - 1:
        return b"j" + joined.encode()
    return b"m" + _ENCODER.encode(ids)
