"""The rule engine proper: event time, routing, evaluation, lifecycle. No I/O.

Events enter through :meth:`Engine.process`. The engine's clock is a
watermark: the largest event time seen minus the allowed lateness (default
5 s). An event older than the watermark when it arrives is *late*: it is
counted (per type, with a few recent examples) and reported in the status,
never folded in. Accepted events wait in a reorder buffer of one list per
second of event time; before the engine evaluates at second ``T`` it releases
every buffered event older than ``T`` to the detectors, in time order. So the
detectors always see the same sequence whatever the arrival order within the
lateness and however the input was batched, and out-of-order input gives the
same incidents as sorted input.

**Early firing.** Waiting for the watermark costs every incident the lateness
(5 s) plus up to a second. Rules whose verdict rests on one event (customer
data in an agent's message, a bulk export, one high-reach complaint post, the
failed probe that makes a component down) need not wait: a detector that names
``instant_types`` has an ``instant(event, older)`` hook, called when the event
is accepted, that says without changing any state which signal the event will
cause (read from the detector's windows as they are, plus the buffered events
of its type older than it, plus this event). The lifecycle
(:meth:`~monitor.lifecycle.Lifecycle.early`) fires it at once *as of the
evaluation that will release the event* (its slot, not the arrival time), so
the incident opens with the ``opened_at`` the watermark path would give it;
when that evaluation comes, it confirms the alert (a quiet evidence update
only if its own signal differs, notified only if more severe). Why this keeps
the guarantees: an accepted event is never older than the watermark, so its
evaluation is still ahead and the early fire can only come first; the verdict
of a single-event rule does not depend on the arrival order of other events,
so out-of-order input opens the same incidents at the same ``opened_at`` (one
exception: a qualifying event that arrives after a *newer* qualifying event of
the same subject does not move the ``opened_at`` the newer one gave; and a
same-subject event of the same second arriving later may lead to one more
quiet ``confirmed`` update); early fires are deterministic functions of the
checkpointed state and the re-read entries, marked apart from evaluation
actions by the applier, so a restarted monitor does not open anything twice.
Window rules (surges, service levels, silences, lost heartbeats) keep waiting.

**Replay at the speed of the data.** In replay (no wall clock), when nothing
is active (no signal at the last evaluation, no alert in the lifecycle) and
every detector has ``next_due(at) -> float | None`` (the earliest event time
after ``at`` at which its answer may change with no new event: a silence
becoming significant, a bucket closing; None: only a new event can change it),
the next evaluation is the earliest of those times, the evaluation that
releases the next buffered event, and the first slot past the watermark
(where a new event may land). Skipped evaluations are ones whose answer would
be empty and would change nothing, so the incidents are those of evaluating
every slot (``every_slot = True``, the reference the tests compare with);
while anything is pending, firing or resolving, every slot is evaluated (the
lifecycle's timers). Detectors without the hook keep today's stepping (10 s
steps over long empty stretches, which may move an opening or a resolution by
a few seconds). Observers (the board) do not hold time back in replay.

Evaluation happens once per second of event time (``eval_interval_s``), and
every signal goes through the :class:`~monitor.lifecycle.Lifecycle`, which
returns the :class:`~monitor.lifecycle.Action` records the service or replay
apply to the incident store. In live mode :meth:`Engine.tick` lets the wall
clock push the watermark, so an absence (a lost heartbeat) is noticed when
nothing arrives at all. The whole state, buffer included, round-trips through
:meth:`Engine.snapshot` / :meth:`Engine.restore` for the checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any, Final

from watchfloor.core.events import Event, decode_batch, encode_batch, event_from_map
from watchfloor.monitor.detectors.base import Detector, Signal
from watchfloor.monitor.engine_stats import EngineStats
from watchfloor.monitor.lifecycle import Action, Lifecycle

logger = logging.getLogger(__name__)

DEFAULT_LATENESS_S: Final = 5.0
COARSE_STEP_S: Final = 10
"""Evaluation step over long stretches with nothing buffered (replay gaps, idle nights)."""
CLOCK_SLACK_S: Final = 1.0
"""Live mode: events move the watermark to at most the wall clock + this - the lateness."""
RESUME_GAP_S: Final = 20.0
"""Live: a monitor down longer than this (wall clock) counts absence again from its restart."""
MAX_CATCH_UP_S: Final = 2 * 86_400
"""A watermark jump larger than this is not evaluated second by second."""
_TS: Final = attrgetter("ts")
InstantHook = Callable[[Event, Sequence[Event]], Signal | None]
"""``detector.instant(event, buffered)``: the signal ``event`` causes, judged on arrival;
``buffered`` are the other events of its type not folded in yet (arrival order; the
hook keeps those of its subject older than ``event``, only when the event qualifies)."""


class EngineError(Exception):
    """Base error of the rule engine."""


class Engine:
    """Event-time engine over a set of detectors (and passive observers such as the board)."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        lifecycle: Lifecycle | None = None,
        lateness_s: float = DEFAULT_LATENESS_S,
        eval_interval_s: float = 1.0,
        observers: Sequence[Detector] = (),
        late_horizon_s: float = 0.0,
        clock: Callable[[], float] | None = None,
        max_ahead_s: float = 60.0,
    ) -> None:
        self.detectors = list(detectors)
        self.observers = list(observers)
        self.lifecycle = lifecycle or Lifecycle()
        self.lateness_s = float(lateness_s)
        self.late_horizon_s = float(late_horizon_s)
        """Events up to this far behind the watermark are still evaluated (0: dropped)."""
        self.clock = clock
        """Live mode: the wall clock that bounds event time (None: replay, event time only)."""
        self.max_ahead_s = float(max_ahead_s)
        # Time is cut in slots: one second (default), or 1/k of a second for a
        # sub-second evaluation interval (low-latency setups).
        self.eval_interval_s = float(eval_interval_s)
        self._per_s, self._step = _slots(self.eval_interval_s)
        self.stats = EngineStats()
        self.watermark = float("-inf")
        self.max_ts = float("-inf")
        self.last_signals: list[Signal] = []
        self._buffer: dict[int, list[Event]] = {}
        """Slot (``int(ts * per_s)``) -> events waiting for the watermark to pass it."""
        self._next_eval: int | None = None
        """Slot of the next evaluation."""
        self._routes = self._build_routes()
        self._late_routes = self._build_routes(observers=False)
        self._blank = {d.name: d.snapshot() for d in self.detectors}
        """Empty detector states, for a checkpoint whose windows ran ahead of the clock."""
        self._instant = self._build_instant_routes()
        self._held: dict[str, list[Event]] = {}
        """Buffered events of the types judged on arrival, for the hooks (older ones first)."""
        self.on_signals: Callable[[float, list[Signal]], None] | None = None
        self.every_slot = False
        """Evaluate every slot, never skip (the reference a faster replay is compared with)."""
        self._due: dict[int, float | None] = {}
        """Detector index -> its last ``next_due`` answer, good until it passes or the
        detector gets an event (its answer cannot change earlier: the hook's contract)."""
        self._owners = self._build_owners()

    def _build_routes(
        self, *, observers: bool = True
    ) -> dict[str, tuple[Callable[[Event], object], ...]]:
        routes: dict[str, list[Callable[[Event], object]]] = {}
        for det in [*self.detectors, *(self.observers if observers else ())]:
            # A detector may name one method per event type (saves a dispatch per event).
            by_type = getattr(det, "observers_by_type", None)
            per_type = by_type() if by_type is not None else {}
            for etype in det.event_types:
                routes.setdefault(etype, []).append(per_type.get(etype, det.observe))
        return {etype: tuple(calls) for etype, calls in routes.items()}

    def _build_owners(self) -> dict[str, tuple[int, ...]]:
        """Event type -> indexes of the detectors that observe it."""
        owners: dict[str, list[int]] = {}
        for index, det in enumerate(self.detectors):
            for etype in det.event_types:
                owners.setdefault(etype, []).append(index)
        return {etype: tuple(found) for etype, found in owners.items()}

    def _build_instant_routes(self) -> dict[str, tuple[InstantHook, ...]]:
        """Event type -> the ``instant`` hooks of the detectors that judge it on arrival."""
        routes: dict[str, list[InstantHook]] = {}
        for det in self.detectors:
            hook: InstantHook | None = getattr(det, "instant", None)
            if hook is None:
                continue
            for etype in getattr(det, "instant_types", ()):
                routes.setdefault(etype, []).append(hook)
        return {etype: tuple(hooks) for etype, hooks in routes.items()}

    # --- input ---------------------------------------------------------------------

    def process(self, events: Iterable[Event]) -> list[Action]:
        """Take a batch of events (any order); return the actions of the evaluations it allowed.

        Early fires (single-event rules judged on arrival) come first: their
        events are accepted, so the evaluations they stand for are still ahead.
        """
        buffer = self._buffer
        lateness = self.lateness_s
        max_ts = self.max_ts
        watermark = self.watermark
        per_s = self._per_s
        instant = self._instant
        early: list[Action] = []
        count = 0
        # Live, one producer's clock must not move everyone's time: nothing beyond
        # the wall clock + max_ahead_s is placed, and placed events push the
        # watermark to the wall clock (+ a little) at most.
        ceiling, cap = self._bounds()
        for event in events:
            count += 1
            ts = event.ts
            if ts < watermark:
                early += self._late(event, watermark)
                continue
            if ts > ceiling:
                self.stats.count_unplaced(event, "ahead", ts - ceiling + self.max_ahead_s)
                continue
            if ts > max_ts:
                max_ts = ts
            if (ts if ts < cap else cap) - lateness > watermark:
                watermark = (ts if ts < cap else cap) - lateness
            slot = int(ts * per_s)
            bucket = buffer.get(slot)
            if bucket is None:
                buffer[slot] = [event]
            else:
                bucket.append(event)
            if instant and event.type in instant:
                early += self._fire_early(event, slot)
        self.stats.events += count
        self.max_ts = max_ts
        if early:
            return early + self._advance(watermark)
        return self._advance(watermark)

    def _fire_early(self, event: Event, slot: int) -> list[Action]:
        """Judge ``event`` alone now; a verdict fires as of the evaluation that will see it."""
        at = self._evaluation_after(slot) / self._per_s
        # A hook filters the buffered events (older than this one, its subject) only
        # when this event qualifies, which is rare: no per-event copy here.
        held = self._held.setdefault(event.type, [])
        actions = self._judge(event, held, at)
        held.append(event)
        return actions

    def _judge(self, event: Event, held: Sequence[Event], at: float) -> list[Action]:
        """Run the instant hooks of ``event``'s type; a verdict fires as of ``at``."""
        actions: list[Action] = []
        for hook in self._instant[event.type]:
            try:
                signal = hook(event, held)
            except Exception:
                self.stats.detector_errors += 1
                logger.exception("instant rule failed type=%s source=%s", event.type, event.source)
                continue
            if signal is not None:
                actions += self.lifecycle.early(signal, at)
        return actions

    def _evaluation_after(self, slot: int) -> int:
        """The slot of the first evaluation that releases an event of ``slot``."""
        nxt = self._next_eval
        if nxt is None or nxt > slot:
            return slot + 1 if nxt is None else nxt
        return nxt + -(-(slot + 1 - nxt) // self._step) * self._step

    def _bounds(self) -> tuple[float, float]:
        """(latest event time placed at all, latest one that may move the watermark)."""
        if self.clock is None:
            return math.inf, math.inf
        now = self.clock()
        return now + self.max_ahead_s, now + CLOCK_SLACK_S

    def _late(self, event: Event, watermark: float) -> list[Action]:
        """An event behind the watermark: evaluated within the late horizon, else unplaced.

        Its evaluation slot has passed, so it goes straight to the detectors (their
        windows take it where they still reach; the board keeps newer rows) and a
        one-event rule it triggers fires as of the next evaluation.
        """
        stats = self.stats
        behind = watermark - event.ts
        stats.late_events += 1
        stats.late_by_type[event.type] += 1
        stats.recent_late.append(
            {"type": event.type, "source": event.source, "ts": event.ts,
             "behind_s": round(behind, 3)}
        )  # fmt: skip
        if behind > self.late_horizon_s:
            stats.count_unplaced(event, "too_late", behind)
            return []
        stats.late_folded += 1
        self._due.clear()
        if self._next_eval is None:
            self._next_eval = self._limit(watermark) + 1
        actions: list[Action] = []
        if event.type in self._instant:
            at = self._next_eval / self._per_s
            actions = self._judge(event, self._held.get(event.type, []), at)
            # Opened as of the evaluation that would have seen it on time.
            own = (int(event.ts * self._per_s) + 1) / self._per_s
            actions = [replace(a, first_at=own) if a.op == "fire" else a for a in actions]
        gone = False
        for observe in self._late_routes.get(event.type, ()):
            try:
                gone = observe(event) is False or gone
            except Exception:
                self._detector_failed(observe, event)
        if gone:  # a window rule it belongs to no longer reaches back to it
            stats.count_unplaced(event, "window_gone", behind)
        return actions

    def tick(self, now: float) -> list[Action]:
        """Processing-time tick (live mode): the wall clock also pushes the watermark."""
        return self._advance(now - self.lateness_s)

    def repair_clock(self, now: float) -> bool:
        """Bring a restored state whose clock ran ahead of ``now`` back to the present.

        An older monitor (or a wrong wall clock) may have checkpointed a watermark
        far ahead: every correct event would then be late, across restarts.
        Buffered events beyond ``now + max_ahead_s`` are counted as unplaced, time
        restarts at ``now``, detector windows (advanced into the future) start
        empty and alert times in the future are brought back to ``now``.
        """
        if self.watermark <= now + CLOCK_SLACK_S - self.lateness_s and (
            self.max_ts <= now + self.max_ahead_s
        ):
            return False
        ceiling = now + self.max_ahead_s
        kept: dict[int, list[Event]] = {}
        for slot, bucket in self._buffer.items():
            for event in bucket:
                if event.ts > ceiling:
                    self.stats.count_unplaced(event, "checkpoint_ahead", event.ts - now)
                else:
                    kept.setdefault(slot, []).append(event)
        self._buffer = kept
        self._held = {t: [e for e in h if e.ts <= ceiling] for t, h in self._held.items()}
        self.max_ts = max((e.ts for b in kept.values() for e in b), default=now)
        self.watermark = now - self.lateness_s
        self._next_eval = self._limit(self.watermark) + 1
        for det in self.detectors:
            det.restore(self._blank[det.name])
        self._due.clear()
        self.lifecycle.restore(_clamp_alerts(self.lifecycle.snapshot(), now))
        self.stats.checkpoint_repairs += 1
        return True

    def resume(self, now: float, down_s: float) -> bool:
        """After the monitor's own downtime (live): absence is counted again from ``now``.

        ``down_s`` is how long the monitor was down by the wall clock (since its
        last status), not by event time: a backlog of old events read after a
        quick restart is no downtime. A monitor that was down saw nothing, which
        is no evidence that sources fell silent: detectors with a
        ``resume(down_from, at)`` hook (lost heartbeats, silent intake) start
        counting absence again at ``now``.
        """
        down_from = self.watermark + self.lateness_s
        if not math.isfinite(down_from) or down_s <= RESUME_GAP_S:
            return False
        for det in self.detectors:
            hook = getattr(det, "resume", None)
            if hook is not None:
                hook(down_from, now)
        return True

    def flush(self) -> list[Action]:
        """End of input (replay): release everything and evaluate just past the last event."""
        if self.max_ts == float("-inf"):
            return []
        return self._advance((int(self.max_ts * self._per_s) + 1) / self._per_s)

    def evaluate_now(self) -> list[Action]:
        """Evaluate at the current watermark on demand (events before it are released)."""
        if self.watermark == float("-inf"):
            return []
        at = self._limit(self.watermark)
        self._release_before(at)
        return self._evaluate(at)

    # --- time ----------------------------------------------------------------------------

    def _limit(self, watermark: float) -> int:
        """The last slot the watermark has passed (a hair of slack for float rounding)."""
        return math.floor(watermark * self._per_s + 1e-6)

    def _advance(self, watermark: float) -> list[Action]:
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        limit = self._limit(watermark)
        if self._next_eval is None:
            if not self._buffer:
                return []
            first = min(self._buffer) + 1
            if first > limit:
                return []
            self._next_eval = first
        per_s = self._per_s
        if limit - self._next_eval > MAX_CATCH_UP_S * per_s:
            logger.warning(
                "watermark jumped %.0fs ahead; not evaluating the gap step by step",
                (limit - self._next_eval) / per_s,
            )
            self._next_eval = max(self._next_eval, limit - COARSE_STEP_S * 6 * per_s)
            self._release_before(self._next_eval)
        actions: list[Action] = []
        while self._next_eval <= limit:
            at = self._next_eval
            self._release_before(at)
            actions.extend(self._evaluate(at))
            self._next_eval = at + self._step_after(at, limit)
        return actions

    def _step_after(self, at: int, limit: int) -> int:
        if self.every_slot:
            return self._step
        jump = self._quiet_until(at, limit)
        if jump is not None:
            return jump
        # Over a long stretch with nothing buffered, evaluate every COARSE_STEP_S
        # seconds: absences are still noticed, a day's gap is not 86 400 calls.
        coarse = COARSE_STEP_S * self._per_s
        if limit - at < coarse * 6:
            return self._step
        if self._buffer and min(self._buffer) < at + coarse:
            return self._step
        return max(self._step, coarse)

    def _quiet_until(self, at: int, limit: int) -> int | None:
        """Replay with nothing active: slots to the next evaluation anything needs, or None
        when some detector cannot say (then the usual stepping applies)."""
        if self.clock is not None:
            return None
        hooks: list[Callable[[float], float | None]] = []
        for det in self.detectors:
            hook = getattr(det, "next_due", None)
            if hook is None:
                return None
            hooks.append(hook)
        if self.last_signals or self.lifecycle.states():
            return self._step  # pending, firing or resolving: its timers run slot by slot
        per_s = self._per_s
        target = limit + 1  # a new event lands at or after the watermark's slot
        if self._buffer:
            target = min(target, min(self._buffer) + 1)
        step = self._step
        if target <= at + step:
            return step  # the next slot is needed anyway: no detector need be asked
        now = at / per_s
        for index, hook in enumerate(hooks):
            due = self._due.get(index, -math.inf)
            if due is not None and due <= now:  # unknown, or passed: ask again
                due = self._due[index] = hook(now)
            if due is not None:
                target = min(target, math.ceil(due * per_s - 1e-6))
        return max(step, -(-(target - at) // step) * step)  # on the evaluation grid

    def _release_before(self, at: int) -> None:
        """Hand every buffered event older than slot ``at`` to the detectors, in time order."""
        buffer = self._buffer
        routes = self._routes
        if self._held:
            self._forget_held(at)
        due, owners = self._due, self._owners
        for slot in sorted(s for s in buffer if s < at):
            bucket = buffer.pop(slot)
            bucket.sort(key=_TS)
            for event in bucket:
                if due:
                    for index in owners.get(event.type, ()):
                        due.pop(index, None)
                for observe in routes.get(event.type, ()):
                    try:
                        observe(event)
                    except Exception:
                        self._detector_failed(observe, event)

    def _forget_held(self, at: int) -> None:
        """Events released before slot ``at`` are the detectors' now, not the hooks'."""
        per_s = self._per_s
        for etype, held in list(self._held.items()):
            kept = [e for e in held if int(e.ts * per_s) >= at]
            if kept:
                self._held[etype] = kept
            else:
                del self._held[etype]

    def _detector_failed(self, observe: Callable[[Event], object], event: Event) -> None:
        self.stats.detector_errors += 1
        logger.exception(
            "detector failed on an event detector=%s type=%s source=%s",
            getattr(observe, "__self__", observe),
            event.type,
            event.source,
        )

    def _evaluate(self, slot: int) -> list[Action]:
        at = slot / self._per_s
        self.stats.evaluations += 1
        signals: list[Signal] = []
        for det in self.detectors:
            try:
                signals.extend(det.evaluate(at))
            except Exception:
                self.stats.detector_errors += 1
                logger.exception("detector failed to evaluate detector=%s at=%s", det.name, at)
        for obs in self.observers:
            try:
                obs.evaluate(at)
            except Exception:
                logger.exception("observer failed to evaluate observer=%s", obs.name)
        self.last_signals = signals
        if self.on_signals is not None:
            self.on_signals(at, signals)
        return self.lifecycle.update(signals, at)

    # --- state ------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return sum(len(b) for b in self._buffer.values())

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole state (msgpack-able), for the checkpoint."""
        return {
            "v": 1,
            "watermark": self.watermark,
            "max_ts": self.max_ts,
            "next_eval": self._next_eval,
            "per_s": self._per_s,
            # The reorder buffer is most of a busy engine's state (allowed lateness times the
            # event rate): one batch encoding of it, as the stream carries events, costs a
            # tenth of a map per event, and a checkpoint is taken every second.
            "buffer_batch": encode_batch(
                [e for second in sorted(self._buffer) for e in self._buffer[second]]
            ),
            "stats": self.stats.to_map(),
            "lifecycle": self.lifecycle.snapshot(),
            "detectors": {d.name: d.snapshot() for d in [*self.detectors, *self.observers]},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a :meth:`snapshot`; detectors missing from it start empty."""
        self.watermark = float(state["watermark"])
        self.max_ts = float(state["max_ts"])
        self._next_eval = state.get("next_eval")
        saved_per_s = int(state.get("per_s", 1))
        if self._next_eval is not None and saved_per_s != self._per_s:
            # The evaluation interval changed between runs: same instant, new slots.
            self._next_eval = math.ceil(self._next_eval * self._per_s / saved_per_s)
        self._buffer = {}
        self._held = {}
        self._due.clear()
        for event in _buffered(state):
            self._buffer.setdefault(int(event.ts * self._per_s), []).append(event)
            if event.type in self._instant:
                self._held.setdefault(event.type, []).append(event)
        self.stats = EngineStats.from_map(state.get("stats", {}))
        self.lifecycle.restore(state.get("lifecycle", {}))
        saved = state.get("detectors", {})
        for det in [*self.detectors, *self.observers]:
            if det.name in saved:
                det.restore(saved[det.name])
            else:
                logger.warning("no saved state for detector=%s: it starts empty", det.name)


def _buffered(state: Mapping[str, Any]) -> list[Event]:
    """The reorder buffer of a snapshot: one encoded batch, or (older checkpoints) a map per
    event."""
    batch = state.get("buffer_batch")
    if isinstance(batch, bytes):
        return decode_batch(batch)
    return [event_from_map(raw) for raw in state.get("buffer", [])]


def _clamp_alerts(state: dict[str, Any], now: float) -> dict[str, Any]:
    """A lifecycle snapshot with every alert time after ``now`` brought back to ``now``."""
    for alert in state.get("alerts", {}).values():
        alert["since"] = min(alert["since"], now)
        alert["flips"] = [min(f, now) for f in alert["flips"]]
    return state


def time_slices(
    events: Iterable[Event], span_s: float = 1.0, limit: int = 5_000
) -> Iterator[list[Event]]:
    """Cut events (in arrival order) into chunks of at most ``span_s`` of event time.

    Fed chunk by chunk, the engine evaluates the seconds before an early-firing
    event before that event arrives, as it does with live producers' short
    batches: a problem then opens at its first evidence, not at a later event of
    the same fingerprint that was judged on arrival. Replay and the monitor both
    feed the engine this way, so a long recorded batch behaves like live traffic.
    """
    chunk: list[Event] = []
    start = 0.0
    for event in events:
        if chunk and (len(chunk) >= limit or abs(event.ts - start) >= span_s):
            yield chunk
            chunk = []
        if not chunk:
            start = event.ts
        chunk.append(event)
    if chunk:
        yield chunk


def _slots(interval_s: float) -> tuple[int, int]:
    """(slots per second, slots per evaluation) for an evaluation interval.

    Intervals of a second or more are whole seconds; shorter ones are 1/k of a
    second (0.5, 0.25, 0.1...), so that slots never straddle a second.
    """
    if interval_s <= 0:
        raise EngineError(f"evaluation interval must be positive, got {interval_s}")
    if interval_s >= 1:
        return 1, round(interval_s)
    return max(1, round(1 / interval_s)), 1
