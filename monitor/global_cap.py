"""The per-rule incident cap, counted across every events shard and worker.

Each shard's lifecycle caps the incidents its own subjects open (``lifecycle.
cap_per_minute``), but a storm spread over sixteen shards would pass sixteen
caps. So before an action opens a new incident (no incident is open for its
fingerprint yet) the applier counts it in one Redis counter per rule and minute
(``INCR``, atomic across workers). Past the cap the subject joins the rule's
roll-up incident instead (subject ``(multiple)``, the same one the lifecycle
uses), and every later fire of that fingerprint goes there too until it
clears; when the last capped subject of a rule clears, the roll-up resolves.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

from watchfloor.core import keys
from watchfloor.core.incidents import IncidentConflict, IncidentNotFound
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.lifecycle import ROLLUP_SUBJECT, Action

WINDOW_S: Final = 60
SHOWN: Final = 100


class GlobalCap:
    """Diverts opening fires past ``cap_per_minute`` per rule into the rule's roll-up."""

    def __init__(self, redis: Any, store: Any, cap_per_minute: int) -> None:
        self.redis = redis
        self.store = store
        self.cap = cap_per_minute

    async def divert(self, action: Action) -> Action | None:
        """The roll-up fire to apply instead of ``action``, or None to apply it as is."""
        sig = action.signal
        if self.cap <= 0 or sig.subject == ROLLUP_SUBJECT:
            return None
        capped = keys.capped_subjects(sig.rule)
        if not await self.redis.sismember(capped, sig.subject):
            if await self.store.open_for(sig.rule, sig.subject) is not None:
                return None  # an update of an incident already open: never capped
            counter = keys.cap_counter(sig.rule, int(action.at // WINDOW_S))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(counter)
                pipe.expire(counter, 2 * WINDOW_S)
                count, _ = await pipe.execute()
            if int(count) <= self.cap:
                return None
            await self.redis.sadd(capped, sig.subject)
        return await self._rollup(action)

    async def _rollup(self, action: Action) -> Action:
        sig = action.signal
        capped = keys.capped_subjects(sig.rule)
        n = int(await self.redis.scard(capped))
        shown = sorted(m.decode() if isinstance(m, bytes) else m for m in
                       await self.redis.srandmember(capped, SHOWN))  # fmt: skip
        rolled = Signal(
            rule=sig.rule,
            kind=sig.kind,
            subject=ROLLUP_SUBJECT,
            severity=sig.severity,
            title=f"{n} subjects affected by {sig.rule} (over the incident cap)",
            evidence={
                "subjects": shown,
                "subjects_affected": n,
                "cap_per_minute": self.cap,
                "last": sig.evidence,
            },
            tenant=sig.tenant,
        )
        return Action("fire", rolled, action.at, notify=n == self.cap + 1, reason="rollup")

    async def cleared(self, action: Action) -> bool:
        """Whether ``action`` (a clear) was a capped subject's; resolves the roll-up with
        the rule's last one."""
        sig = action.signal
        capped = keys.capped_subjects(sig.rule)
        if not await self.redis.srem(capped, sig.subject):
            return False
        if await self.redis.scard(capped) == 0:
            rollup = await self.store.open_for(sig.rule, ROLLUP_SUBJECT)
            if rollup is not None:
                with contextlib.suppress(IncidentConflict, IncidentNotFound):  # a person did
                    await self.store.resolve(
                        rollup.id, actor="engine", note="every capped subject cleared", at=action.at
                    )
        return True
