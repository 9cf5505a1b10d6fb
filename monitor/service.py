"""The ``watchfloor monitor`` engine worker: stream in, incidents out, exactly once.

Loop: read entries through the consumer group (``XREADGROUP COUNT/BLOCK``, own
pending entries first after a restart) -> decrypt sensitive fields when a
field keyring exists -> :class:`~monitor.engine.Engine` -> apply the actions to
the incident store -> commit the engine state, the last stream id, the board
rows and the ``XACK`` of those entries in one transaction
(:mod:`monitor.checkpoint`). A monitor killed at any point resumes from the
last commit and re-reads the entries it had not acknowledged; actions are
applied idempotently (per fingerprint, the last applied evaluation second is
remembered in ``keys.ENGINE_APPLIED`` and the incident store dedupes on it),
so no window is lost and no incident is opened twice. An entry that keeps
failing is moved to the dead-letter stream after ``max_deliveries`` attempts
and raises an incident. When the stream is idle, the wall clock ticks the
watermark so that absences are still noticed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from watchfloor.core import keys
from watchfloor.core.bus import Entry, EventConsumer
from watchfloor.core.config import Config
from watchfloor.core.events import SENSITIVE_FIELDS, Event
from watchfloor.core.incidents import (
    IncidentStore,
)
from watchfloor.core.leases import LeaseLost
from watchfloor.core.shards import shard_of
from watchfloor.monitor import checkpoint as ckpt
from watchfloor.monitor.board import Board
from watchfloor.monitor.checkpoint import ActionApplier, IncidentHook
from watchfloor.monitor.collector_clock import idle_clock
from watchfloor.monitor.engine import Engine, time_slices
from watchfloor.monitor.lifecycle import Action, Lifecycle, LifecycleConfig
from watchfloor.monitor.sealing import open_snapshot, seal_snapshot
from watchfloor.monitor.silences import active_silences

logger = logging.getLogger(__name__)

SILENCE_REFRESH_S: Final = 5.0
OUTBOX_RETRY_S: Final = 30.0
"""How often incident follow-up work whose hook failed is tried again."""
STATUS_CHANGE_EVERY_S: Final = 5.0
CHECKPOINT_EVERY_ENTRIES: Final = 1_000


class MonitorError(Exception):
    """Base error of the monitor service."""


# --- building the engine -------------------------------------------------------------


def load_rules(path: str | Path | None = None) -> Any:
    """The rules (``monitor.rules.Rules``): defaults merged with ``path`` when given."""
    from watchfloor.monitor.rules import load_rules as load

    return load(path)


def build_engine(
    config: Config, rules: Any = None, clock: Callable[[], float] | None = None
) -> Engine:
    """The engine with the detectors of ``rules``, the board and the lifecycle.

    ``clock`` (live mode) bounds event time by the wall clock; replay passes none.
    """
    from watchfloor.monitor.detector_set import build_detectors

    if rules is None:
        rules = load_rules(config.monitor.rules_file)
    board = Board(threshold_for=_sla_threshold(rules))
    engine = Engine(
        build_detectors(rules),
        lifecycle=Lifecycle(LifecycleConfig.from_rules(getattr(rules, "document", rules))),
        lateness_s=config.monitor.allowed_lateness_s,
        eval_interval_s=config.monitor.eval_interval_s,
        observers=[board],
        late_horizon_s=config.monitor.late_horizon_s,
        clock=clock,
        max_ahead_s=config.monitor.max_ahead_s,
    )
    engine.on_signals = board.note_signals
    return engine


def _sla_threshold(rules: Any) -> Any:
    """(queue, channel) -> the rules' answer threshold, for the board's service level."""
    sla = getattr(rules, "sla", None)
    if sla is None:
        return None
    return lambda queue, channel: sla.get(channel=channel, queue=queue).longest_wait_s


def board_of(engine: Engine) -> Board | None:
    return next((o for o in engine.observers if isinstance(o, Board)), None)


# --- the worker -----------------------------------------------------------------------------


class MonitorService:
    """The engine worker: one instance per monitor process."""

    def __init__(
        self,
        redis: Any,
        config: Config,
        *,
        engine: Engine | None = None,
        rules: Any = None,
        on_incident: IncidentHook | None = None,
        audit: Any = None,
        consumer_name: str | None = None,
        clock: Callable[[], float] = time.time,
        shard: int = 0,
        owner: str | None = None,
        shards: int | None = None,
    ) -> None:
        self.redis = redis
        self.shard = shard
        self.shards = shards or config.redis.shards
        """How many shards there are: a hand resolution or an outbox entry is the
        business of the shard its subject maps to."""
        """The events shard this engine reads (``keys.events_shard(shard)``)."""
        self.owner = owner
        """The worker id whose lease of the shard every commit checks (None: no lease,
        a single-process use such as a bench or a test)."""
        self.config = config
        self.rules = rules
        self.clock = clock
        self.engine = engine or build_engine(config, rules, clock)
        self._fresh_engine = engine is None
        # A stable name, so that a restarted monitor owns its pending entries.
        self.name = consumer_name or config.monitor.consumer or socket.gethostname()
        self.store = IncidentStore(redis, changes_maxlen=config.redis.changes_maxlen)
        self.applier = ActionApplier(
            self.store,
            on_incident=on_incident,
            audit=audit,
            shard=shard,
            cap_per_minute=self.engine.lifecycle.config.cap_per_minute,
        )
        self.consumer = self._new_consumer()
        self.state = ckpt.Checkpoint()
        self.cipher: Any = None
        self._warned_blind = False
        self._to_ack: list[str] = []
        self._reopen_seen: dict[str, str] = {}
        self._last_commit = 0.0
        self._committed: tuple[int, int, int, float] = (-1, -1, -1, 0.0)
        self._late_reported = 0
        self._unplaced_reported = 0
        self.unplaced_at = 0.0
        """Wall-clock time the unplaced count last grew (``/healthz`` shows recent ones)."""
        self._last_status_change = 0.0
        self._next_silences = 0.0
        self._next_outbox = time.monotonic() + OUTBOX_RETRY_S  # start() replays it first
        self.dead_letters = 0
        self.batches = 0
        self.lost = False
        """Set when a commit found the shard's lease held by another worker."""

    def _new_consumer(self) -> EventConsumer:
        m = self.config.monitor
        return EventConsumer(
            self.redis,
            consumer=self.name,
            stream=keys.events_shard(self.shard),
            dead_letter=keys.dead_letter(self.shard),
            count=m.read_count,
            block_ms=m.block_ms,
            claim_idle_ms=m.claim_idle_ms,
        )

    # --- lifecycle of the worker ---------------------------------------------------------

    async def start(self) -> None:
        """Create the group, load the checkpoint and the keyring."""
        await self.consumer.ensure_group()
        await self._adopt_pending()
        # The keyring first: the checkpoint's engine state is sealed with it.
        self.cipher = _load_cipher(self.config)
        self.state = await ckpt.load(self.redis, self.shard)
        if self.state.engine is not None:
            self._restore(self.state.engine)
        repaired = self._repair_clock()
        await self._resume_after_downtime()
        self.batches = self.state.counters.get("batches", 0)
        self.dead_letters = self.state.counters.get("dead_letters", 0)
        self._late_reported = self.engine.stats.late_events
        self._unplaced_reported = self.engine.stats.unplaced_total
        if repaired:
            self.unplaced_at = self.clock()
        # Follow-up work of incidents written just before a crash (audit, playbook).
        await self.applier.replay_outbox(self.owns)

    def owns(self, subject: str | None) -> bool:
        """Whether ``subject``'s events (and so its incidents' follow-ups) are this shard's;
        a subject-less entry written by an older version is shard 0's."""
        if subject is None:
            return self.shard == 0
        return shard_of(subject, self.shards) == self.shard

    def _restore(self, saved: dict[str, Any]) -> None:
        try:
            self.engine.restore(open_snapshot(saved, self.cipher, self.shard))
        except Exception:
            # A checkpoint this version cannot read must not keep the monitor down:
            # it starts with empty windows (a warm-up) and says so.
            logger.exception("engine checkpoint unreadable; starting with empty windows")
            if self._fresh_engine:
                self.engine = build_engine(self.config, self.rules, self.clock)
            return
        logger.info(
            "resumed from checkpoint last_id=%s watermark=%.3f",
            self.state.last_id,
            self.engine.watermark,
        )

    def _repair_clock(self) -> bool:
        """A checkpoint whose clock ran ahead of ours is brought back to the present."""
        if self.engine.clock is None:
            return False
        ahead = self.engine.watermark - self.clock()
        repaired = self.engine.repair_clock(self.clock())
        if repaired:
            logger.warning(
                "engine checkpoint was %.0fs ahead of the wall clock: time restarts now, "
                "detector windows start empty repairs=%d",
                ahead,
                self.engine.stats.checkpoint_repairs,
            )
        return repaired

    async def _resume_after_downtime(self) -> None:
        """Absence (lost heartbeats, silent intake) counts again from our own restart.

        Downtime is wall-clock time since the last status a monitor wrote."""
        if self.engine.clock is None:
            return
        last = await self.redis.hget(keys.engine_status(self.shard), "updated_at")
        try:
            down_s = self.clock() - float(last) if last else 0.0
        except ValueError:
            down_s = 0.0
        if self.engine.resume(self.clock(), down_s):
            logger.info("monitor resumed after %.0fs down: absence is counted from now", down_s)

    async def _adopt_pending(self) -> None:
        """Take over every entry pending in the group, whoever read it.

        There is one engine state (one checkpoint), so one monitor at a time:
        entries a previous process (another consumer name) read but did not
        acknowledge are not in the state and must be re-read first, in order.
        """
        cursor = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.consumer.stream, self.consumer.group, self.name, 0, cursor, count=500
            )
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if cursor == "0-0":
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Process the stream until ``stop`` is set; commit once more on the way out."""
        if not await self._start_until_ready(stop):
            return
        backoff = 0.05
        while not stop.is_set():
            try:
                await self.step()
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except LeaseLost as exc:
                # Another worker holds the shard now: nothing of ours may be written.
                logger.warning("shard %d given up: %s", self.shard, exc)
                self.lost = True
                return
            except Exception:
                logger.exception("engine step failed; resuming from the last checkpoint")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                if not await self._recover(stop):
                    return
        try:
            await self.commit(force=True)
        except LeaseLost as exc:
            logger.warning("shard %d: final checkpoint not written: %s", self.shard, exc)
            self.lost = True
        except Exception:
            logger.exception("final checkpoint failed; the next start re-reads the rest")

    async def _start_until_ready(self, stop: asyncio.Event) -> bool:
        """:meth:`start`, retried with backoff (Redis may be down); False if stopped first."""
        backoff = 0.1
        while not stop.is_set():
            try:
                await self.start()
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("monitor cannot start yet, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        return False

    async def _recover(self, stop: asyncio.Event) -> bool:
        # In-memory state may be ahead of what was committed: start over from the
        # checkpoint (never commit a state that was not restored from it), and
        # re-read our unacknowledged entries.
        if self._fresh_engine:
            self.engine = build_engine(self.config, self.rules, self.clock)
        self._to_ack = []
        self._reopen_seen = {}
        self.consumer = self._new_consumer()
        return await self._start_until_ready(stop)

    def swap_rules(self, rules: Any) -> None:
        """Detect with ``rules`` from now on (a live reload), keeping the running state.

        The new engine is restored from a snapshot of the running one (windows,
        watermark, open problems), synchronously, so no entry is processed half by
        each; if the new detectors cannot take that state, this raises and the
        running engine is left as it was.
        """
        engine = build_engine(self.config, rules, self.clock)
        engine.restore(self.engine.snapshot())
        engine.lifecycle.silences = self.engine.lifecycle.silences
        self.engine, self.rules, self._fresh_engine = engine, rules, True

    async def step(self) -> None:
        """One read -> process -> apply -> (maybe) commit round."""
        await self._refresh_silences()
        await self._take_reopens()
        await self._retry_outbox()
        entries = await self.consumer.read()
        if entries:
            await self._process_entries(entries)
        elif self.config.monitor.tick_s > 0 and self._read_ok():
            # Idle stream: the wall clock moves the watermark (tick_s = 0: event time
            # only), never past what a live collector acknowledged and has not written.
            m = self.config.monitor
            now = await idle_clock(self.redis, self.clock(), m.collector_fresh_s)
            await self.applier.apply(self.engine.tick(now))
        await self.commit()

    def _read_ok(self) -> bool:
        """Whether the last read really found the stream idle (not Redis unreachable).

        The consumer answers ``[]`` in both cases; while it backs off after a
        failure the wall clock must not move the watermark, or the batches the
        collector spooled meanwhile would all arrive late.
        """
        return self.consumer.healthy

    async def _process_entries(self, entries: list[Entry]) -> list[Action]:
        """Fold the entries in; apply each one's actions at once (an early fire is not kept
        waiting behind the rest of the read); returns every action applied."""
        actions: list[Action] = []
        for entry in entries:
            if entry.error:
                await self._dead_letter(entry, entry.error)
                continue
            retry = entry.id in self.state.failed
            if not retry and ckpt.compare_ids(entry.id, self.state.last_id) <= 0:
                self._to_ack.append(entry.id)  # already folded into the state
                continue
            try:
                events = self._decrypt(entry.events)
            except Exception as exc:
                await self._failed(entry, exc)
                continue
            produced = [a for part in time_slices(events) for a in self.engine.process(part)]
            if produced:
                await self.applier.apply(produced)
                actions.extend(produced)
            self.state.failed.pop(entry.id, None)
            if ckpt.compare_ids(entry.id, self.state.last_id) > 0:
                self.state.last_id = entry.id
            self._to_ack.append(entry.id)
            self.batches += 1
            # Let the worker's tick run between entries: a long backlog must not starve the
            # lease renewals (a worker that stops renewing loses its shards).
            await asyncio.sleep(0)
        return actions

    def _decrypt(self, events: list[Event]) -> list[Event]:
        if self.cipher is None:
            if not self._warned_blind:
                self._warn_if_encrypted(events)
            return events
        from watchfloor.security.crypto import decrypt_event

        return [decrypt_event(e, self.cipher) if e.type in SENSITIVE_FIELDS else e for e in events]

    def _warn_if_encrypted(self, events: list[Event]) -> None:
        # Without the keyring the leak and opinion detectors would scan ciphertext
        # and see nothing: say so loudly, once.
        for event in events:
            for name in SENSITIVE_FIELDS.get(event.type, ()):
                value = getattr(event, name, None)
                if isinstance(value, str) and value.startswith("wfenc1:"):
                    self._warned_blind = True
                    logger.error(
                        "events carry encrypted fields but this monitor has no field "
                        "keyring in %s/keys: leak and opinion rules cannot read them",
                        self.config.data_dir,
                    )
                    return

    async def _failed(self, entry: Entry, exc: Exception) -> None:
        attempts = max(entry.deliveries, self.state.failed.get(entry.id, 0) + 1)
        reason = f"{type(exc).__name__}: {exc}"
        if attempts >= self.config.monitor.max_deliveries:
            self.state.failed.pop(entry.id, None)
            await self._dead_letter(entry, reason)
            return
        self.state.failed[entry.id] = attempts
        logger.warning("entry failed id=%s attempt=%d error=%s", entry.id, attempts, reason)

    async def _dead_letter(self, entry: Entry, reason: str) -> None:
        await self.consumer.dead_letter(entry, reason)
        self.dead_letters += 1
        action = Action("fire", _dead_letter_signal(entry, reason, self.shard), self.clock())
        await self.applier.fire(action, dedupe_key=entry.id)

    async def _retry_outbox(self) -> None:
        """Follow-up work left by a failed hook is tried again (a crash's at start)."""
        now = time.monotonic()
        if now < self._next_outbox:
            return
        self._next_outbox = now + OUTBOX_RETRY_S
        await self.applier.replay_outbox(self.owns)

    async def _take_reopens(self) -> None:
        """Tell the lifecycle of incidents people resolved (it reopens them if the
        condition still holds); they leave Redis with the checkpoint that has them."""
        found = await self.redis.hgetall(keys.INCIDENT_REOPEN)
        for raw_fp, raw_mark in found.items():
            fp, mark = raw_fp.decode(), raw_mark.decode()
            if not self.owns(fp.partition("|")[2]):
                continue  # another shard's subject: its engine takes it
            if self._reopen_seen.get(fp) != mark:
                self._reopen_seen[fp] = mark
                incident_id, _, at = mark.partition("|")
                self.engine.lifecycle.resolved_by_hand(fp, incident_id, float(at or 0))

    async def _refresh_silences(self) -> None:
        now = self.clock()
        if now < self._next_silences:
            return
        self._next_silences = now + SILENCE_REFRESH_S
        self.engine.lifecycle.silences = await active_silences(self.redis, now)

    # --- commit ---------------------------------------------------------------------------

    async def commit(self, *, force: bool = False) -> None:
        """Checkpoint and acknowledge, at most every ``checkpoint_interval_s`` unless forced.

        Checkpoints are whole snapshots (hundreds of KiB), so not one per read; the
        acks wait for them, incidents do not (actions are applied, idempotently, as
        soon as the engine produces them).
        """
        now = time.monotonic()
        due = now - self._last_commit >= self.config.monitor.checkpoint_interval_s
        if not (force or due or len(self._to_ack) >= CHECKPOINT_EVERY_ENTRIES):
            return
        # The watermark counts as progress: a shard with no traffic still says, each
        # checkpoint interval, how far its clock is (its status is what /healthz folds).
        progress = (
            self.engine.stats.events,
            self.engine.stats.evaluations,
            self.dead_letters,
            self.engine.watermark,
        )
        if not force and not self._to_ack and progress == self._committed:
            return  # idle, nothing evaluated, the clock still: the last checkpoint holds
        self._committed = progress
        self._report_late()
        self._report_unplaced()
        # Sealed: the detectors' windows and the reorder buffer hold decrypted text.
        self.state.engine = seal_snapshot(self.engine.snapshot(), self.cipher, self.shard)
        self.state.counters = {"batches": self.batches, "dead_letters": self.dead_letters}
        status_change = now - self._last_status_change >= STATUS_CHANGE_EVERY_S
        await ckpt.commit(
            self.redis,
            self.state,
            shard=self.shard,
            owner=self.owner,
            status=self.status(),
            ack=self._to_ack,
            group=self.consumer.group,
            board=board_of(self.engine),
            status_change=status_change,
            changes_maxlen=self.config.redis.changes_maxlen,
            reopen_seen=self._reopen_seen,
        )
        self._to_ack = []
        self._reopen_seen = {}
        self._last_commit = now
        if status_change:
            self._last_status_change = now

    def _report_unplaced(self) -> None:
        total = self.engine.stats.unplaced_total
        if total > self._unplaced_reported:
            self.unplaced_at = self.clock()
            logger.warning(
                "events the engine cannot place new=%d total=%d recent=%s",
                total - self._unplaced_reported,
                total,
                list(self.engine.stats.recent_unplaced)[-3:],
            )
            self._unplaced_reported = total

    def _report_late(self) -> None:
        late = self.engine.stats.late_events
        if late > self._late_reported:
            recent = list(self.engine.stats.recent_late)[-3:]
            logger.warning(
                "late events dropped new=%d total=%d by_type=%s recent=%s",
                late - self._late_reported,
                late,
                dict(self.engine.stats.late_by_type),
                recent,
            )
            self._late_reported = late

    def status(self) -> dict[str, Any]:
        engine = self.engine
        stats = engine.stats
        finite = engine.watermark != float("-inf")
        now = self.clock()
        return {
            "watermark": engine.watermark if finite else "",
            "lag_s": round(max(0.0, now - engine.max_ts), 3) if finite else "",
            "events": stats.events,
            "late_events": stats.late_events,
            "late_by_type": json.dumps(dict(stats.late_by_type), sort_keys=True),
            "batches": self.batches,
            "dead_letters": self.dead_letters,
            "buffered": engine.buffered,
            "evaluations": stats.evaluations,
            "detector_errors": stats.detector_errors,
            "late_folded": stats.late_folded,
            "unplaced_total": stats.unplaced_total,
            "unplaced": json.dumps({s: dict(c) for s, c in stats.unplaced.items()}, sort_keys=True),
            "unplaced_at": self.unplaced_at,
            "checkpoint_repairs": stats.checkpoint_repairs,
            "consumer": self.name,
            "shard": self.shard,
            "last_id": self.state.last_id,
            "updated_at": now,
        }


def _dead_letter_signal(entry: Entry, reason: str, shard: int) -> Any:
    from watchfloor.monitor.detectors.base import Signal

    return Signal(
        rule="engine.dead_letter",
        kind="outage",
        subject=keys.events_shard(shard),
        severity="major",
        title=f"Event batch {entry.id} could not be processed",
        evidence={"entry": entry.id, "reason": reason[:300], "deliveries": entry.deliveries},
    )


def _load_cipher(config: Config) -> Any:
    """The field cipher when this data directory has a keyring; else None (plain events)."""
    try:
        from watchfloor.security.crypto import FieldCipher

        return FieldCipher.load(config.data_dir)
    except ImportError:
        return None
    except Exception as exc:  # no keyring: the collector does not encrypt either
        logger.info("no field keyring (%s): sensitive fields are not decrypted", exc)
        return None
