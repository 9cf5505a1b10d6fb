"""The engine's status over every events shard, as one map.

Each shard's engine writes its own status hash (``keys.engine_status(n)``, in
the shard's checkpoint transaction). Readers (``/healthz``, ``/metrics``, the
console, ``watchfloor up``, ``doctor``) want one answer for the monitor, so this
module reads every shard's hash and folds them: the watermark is the smallest
(the shard furthest behind), the lag and the last update the worst, counters
are summed, per-source and per-type counts merged; ``shards`` says how many
shards reported and ``workers`` who holds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from watchfloor.core import keys

SUMMED: Final = (
    "events",
    "late_events",
    "batches",
    "dead_letters",
    "buffered",
    "evaluations",
    "detector_errors",
    "late_folded",
    "unplaced_total",
    "checkpoint_repairs",
)
MERGED_JSON: Final = ("late_by_type", "unplaced")


async def shard_count(redis: Any) -> int:
    """The shard count this Redis was set up with (0 before any process started)."""
    raw = await redis.get(keys.SHARDS)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


async def read_shards(redis: Any) -> list[dict[str, str]]:
    """Each shard's status hash (decoded; empty for a shard not processed yet)."""
    n = await shard_count(redis)
    if not n:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(n):
            pipe.hgetall(keys.engine_status(shard))
        replies = await pipe.execute()
    return [{_text(k): _text(v) for k, v in reply.items()} for reply in replies]


async def read(redis: Any) -> dict[str, str]:
    """Every shard's status folded into one map (empty before the engine ran)."""
    return fold(await read_shards(redis))


def read_sync(redis: Any) -> dict[str, str]:
    """:func:`read` for a blocking client (commands, start-up checks)."""
    raw = redis.get(keys.SHARDS)
    n = int(raw) if raw is not None and raw.isdigit() else 0
    pipe = redis.pipeline(transaction=False)
    for shard in range(n):
        pipe.hgetall(keys.engine_status(shard))
    replies = pipe.execute() if n else []
    return fold({_text(k): _text(v) for k, v in reply.items()} for reply in replies)


def fold(statuses: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """One status map from the shards' maps (see the module doc)."""
    present = [s for s in statuses if s]
    if not present:
        return {}
    out: dict[str, str] = {}
    for name in SUMMED:
        out[name] = str(sum(_int(s.get(name)) for s in present))
    for name in MERGED_JSON:
        out[name] = json.dumps(_merge(s.get(name) for s in present), sort_keys=True)
    marks = [_float(s.get("watermark")) for s in present]
    finite = [m for m in marks if m is not None]
    out["watermark"] = repr(min(finite)) if finite else ""
    lags = [_float(s.get("lag_s")) for s in present]
    out["lag_s"] = (
        repr(max(x for x in lags if x is not None)) if any(x is not None for x in lags) else ""
    )
    out["unplaced_at"] = repr(max(_float(s.get("unplaced_at")) or 0.0 for s in present))
    updated = [_float(s.get("updated_at")) or 0.0 for s in present]
    out["updated_at"] = repr(min(updated))
    out["updated_latest"] = repr(max(updated))
    out["shards"] = str(len(present))
    workers = sorted({s.get("consumer", "") for s in present} - {""})
    out["consumer"] = ",".join(workers)
    out["workers"] = str(len(workers))
    return out


def _merge(raws: Iterable[str | None]) -> dict[str, Any]:
    """Sum nested ``{name: n}`` / ``{name: {reason: n}}`` JSON maps."""
    total: dict[str, Any] = {}
    for raw in raws:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            continue
        if isinstance(data, dict):
            _add(total, data)
    return total


def _add(total: dict[str, Any], data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        if isinstance(value, dict):
            _add(total.setdefault(name, {}), value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[name] = total.get(name, 0) + value


def _int(raw: str | None) -> int:
    try:
        return int(float(raw)) if raw else 0
    except ValueError:
        return 0


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
