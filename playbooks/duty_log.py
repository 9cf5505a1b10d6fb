"""The handover draft and the duty log (值班记录, 2.5 值班记录管理).

The outgoing duty manager writes notes and improvement suggestions into the
draft (``keys.HANDOVER_DRAFT``); the incoming duty manager signs: the report is
collected and rendered at that moment, kept in the duty log (``keys.DUTY_LOG``,
one entry per shift, never rewritten) and mirrored as a Markdown file in the
data directory's ``duty-log/`` (0600), the draft cleared and ``handover.sign``
audited. The next shift starts where the last signed one ended. Free text is
PII-masked before it is stored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import msgpack
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.security.keys import write_private
from watchfloor.security.pii import mask_text

DEFAULT_SHIFT_S: Final = 8 * 3600.0
MAX_TEXT: Final = 8000


class HandoverError(Exception):
    """A handover that cannot be written or signed as asked."""


class SameDutyManager(HandoverError):
    """The outgoing duty manager cannot sign their own handover."""


async def read_draft(redis: aioredis.Redis) -> dict[str, Any]:
    raw = await redis.get(keys.HANDOVER_DRAFT)
    if raw is None:
        return {"notes": "", "suggestions": "", "author": None, "updated_at": None}
    return dict(msgpack.unpackb(raw, raw=False))


async def write_draft(
    redis: aioredis.Redis, *, notes: str | None, suggestions: str | None, author: str
) -> dict[str, Any]:
    """Replace the given parts of the draft (``None`` keeps a part); masked."""
    draft = await read_draft(redis)
    if notes is not None:
        draft["notes"] = mask_text(notes[:MAX_TEXT])
    if suggestions is not None:
        draft["suggestions"] = mask_text(suggestions[:MAX_TEXT])
    draft.update(author=author, updated_at=time.time())
    await redis.set(keys.HANDOVER_DRAFT, msgpack.packb(draft, use_bin_type=True))
    return draft


async def shift_start(redis: aioredis.Redis, now: float) -> float:
    """Where the current shift began: the end of the last signed one, else 8 h ago."""
    ends = [e["until"] for e in await entries(redis)]
    return max(ends) if ends else now - DEFAULT_SHIFT_S


async def entries(redis: aioredis.Redis) -> list[dict[str, Any]]:
    """Every signed shift, newest first."""
    raw = await redis.hgetall(keys.DUTY_LOG)
    found = [msgpack.unpackb(v, raw=False) for v in raw.values()]
    return sorted(found, key=lambda e: e["until"], reverse=True)


async def search(redis: aioredis.Redis, text: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """Signed shifts whose report contains ``text`` (case-insensitive), newest first."""
    needle = text.casefold()
    return [e for e in await entries(redis) if needle in e["markdown"].casefold()][:limit]


async def sign(
    redis: aioredis.Redis,
    *,
    report: dict[str, Any],
    markdown: str,
    signed_by: str,
    signed_at: float,
    data_dir: Path | None,
) -> dict[str, Any]:
    """Keep the signed report in the log (and a file), clear the draft; the entry."""
    if report.get("author") and report["author"] == signed_by:
        raise SameDutyManager(
            f"{signed_by} wrote this handover: the incoming duty manager signs it"
        )
    shift_id = "SHIFT-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(report["now"]))
    entry = {
        "id": shift_id,
        "since": report["since"],
        "until": report["now"],
        "outgoing": report.get("author"),
        "signed_by": signed_by,
        "signed_at": signed_at,
        "still_open": len(report["still_open"]),
        "opened": len(report["opened"]),
        "markdown": mask_text(markdown),
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.DUTY_LOG, shift_id, msgpack.packb(entry, use_bin_type=True))
        pipe.delete(keys.HANDOVER_DRAFT)
        await pipe.execute()
    if data_dir is not None:
        folder = data_dir / "duty-log"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(folder / f"{shift_id}.md", entry["markdown"].encode("utf-8"))
    return entry


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """A log entry without its report (for lists)."""
    return {k: v for k, v in entry.items() if k != "markdown"}
