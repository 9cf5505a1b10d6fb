"""Orders detector: abnormal refunds and order changes, by one agent or for one account.

001 §1.5 asks the duty team to spot abnormal orders such as fake refunds, and
§8.2-8.3 list account security and payment risk. From ``order.change`` events,
two rules of kind ``leak`` (the security kind: a person reviews and resolves):

- ``orders.agent_burst`` (subject: the agent): the watched changes an agent made
  over ``window_s`` far above the agent's own usual pace *while working*: the
  baseline is the mean count of the agent's active windows (windows with no
  change, nights and days off, are not learnt; nor a window of an active
  burst), so a refund desk working at its usual busy pace is quiet. On a
  promotion day everybody refunds more: the expected count is scaled by the
  median ratio of the agents active in the same window (at least
  ``min_peers``), so a rise shared by the desk is the day, not an agent. It
  fires at ``ratio`` times that and ``min_count``, when the Poisson tail is
  below ``p_alarm``; an agent without ``min_history`` active windows is held
  to ``new_agent_count``.
- ``orders.account_burst`` (subject: the account, masked when shown): watched
  changes on ``account_orders`` or more distinct orders of one account within
  ``account_window_s``, by anyone (repeated refund-only claims, an address
  changed again and again).

Events are partitioned by agent (``core.shards``), or by account when no agent
made the change, so with several events shards the account rule sees an
account's changes made by agents of its own shard only.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import Event, OrderChange
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.rule_set import Rules
from watchfloor.monitor.windows import Ring, poisson_sf
from watchfloor.security.pii import mask_text

AGENT_RULE: Final = "orders.agent_burst"
ACCOUNT_RULE: Final = "orders.account_burst"
MAX_KEPT = 20  # changes remembered per agent / account for the evidence
COUNT, AMOUNT = 0, 1


@dataclass(frozen=True, slots=True)
class OrderRules:
    """``[orders]``: the settings of the orders detector."""

    enabled: bool = setting(True, "run this detector")
    watched: tuple[str, ...] = setting(
        ("refund", "refund_only", "compensation", "address_change", "price_change"),
        "the order changes counted (cancellations are the customers' everyday right)",
    )
    window_s: float = setting(3600.0, "an agent's changes over the last hour ...", above_zero=True)
    bucket_s: float = setting(300.0, "... judged every 5 min", above_zero=True)
    ratio: float = setting(4.0, "... at 4x the agent's usual count while working ...")
    min_count: float = setting(15.0, "... and at least 15 changes ...")
    p_alarm: float = setting(1e-4, "... and a Poisson tail below this", high=1.0)
    min_history: int = setting(4, "active windows before the agent's own baseline counts")
    new_agent_count: float = setting(40.0, "an agent without that history: 40 changes in the hour")
    min_peers: int = setting(5, "agents active in the window to scale for a busy day")
    learn_windows: float = setting(
        24.0, "the baseline's memory, in active windows", above_zero=True
    )
    account_window_s: float = setting(86_400.0, "one account's changes over a day ...")
    account_orders: int = setting(5, "... on this many distinct orders")
    max_accounts: int = setting(200_000, "accounts remembered (the least recent are forgotten)")
    forget_s: float = setting(14 * 86_400.0, "an agent idle this long is forgotten")
    for_s: float = setting(0.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        0.0, "resolving: keeps firing this long after it stops holding"
    )


class _Agent:
    __slots__ = (
        "base", "history", "last_at", "pending", "recent", "ring", "slot", "slot_count", "tenant",
    )  # fmt: skip

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.base = 0.0
        """Mean watched changes per active window."""
        self.history = 0
        self.slot = -1
        self.slot_count = 0
        self.pending: list[tuple[int, int]] = []
        """Finished windows (slot, count) not yet judged: learnt only after a judgement."""
        self.last_at = 0.0
        self.recent: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self.tenant: str | None = None


class OrderDetector:
    """Bursts of refunds and order changes per agent and per account."""

    name: ClassVar[str] = "orders"
    event_types: ClassVar[frozenset[str]] = frozenset({"order.change"})

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.p: OrderRules = rules.orders.base
        self.watched = frozenset(self.p.watched)
        self.agents: dict[str, _Agent] = {}
        self.accounts: dict[str, deque[dict[str, Any]]] = {}
        """Account -> its recent watched changes, least recently touched first (LRU)."""
        self.signals: dict[str, Signal] = {}
        """``rule|agent`` or ``rule|account`` (unmasked) -> its active signal."""
        self.dirty: set[str] = set()
        self._judged = -1

    def _ring(self) -> Ring:
        return Ring(self.p.bucket_s, round(self.p.window_s / self.p.bucket_s) + 2, width=2)

    # --- observe ---------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        if type(event) is not OrderChange or event.action not in self.watched:
            return
        e: OrderChange = event
        record = {
            "at": e.ts,
            "action": e.action,
            "order_id": e.order_id,
            "agent_id": e.agent_id,
            "account": mask_text(e.account),
            "amount": e.amount,
        }
        if e.agent_id is not None:
            self._agent_change(e, record)
        kept = self.accounts.pop(e.account, None)
        if kept is None:
            kept = deque(maxlen=MAX_KEPT)
            while len(self.accounts) >= self.p.max_accounts:
                self._forget_account(next(iter(self.accounts)))
        kept.append(record)
        self.accounts[e.account] = kept  # now the most recently touched
        self.dirty.add(e.account)

    def _agent_change(self, e: OrderChange, record: dict[str, Any]) -> None:
        agent_id = e.agent_id or ""
        agent = self.agents.get(agent_id)
        if agent is None:
            agent = self.agents[agent_id] = _Agent(self._ring())
        slot = int(e.ts // self.p.window_s)
        if slot != agent.slot:
            if agent.slot >= 0 and agent.slot_count:
                # Learnt at the next judgement, not now: the change that starts a new window
                # may come before the evaluation that finds the last one was a burst.
                agent.pending.append((agent.slot, agent.slot_count))
            agent.slot, agent.slot_count = slot, 0
        agent.slot_count += 1
        agent.ring.add(e.ts, 1, COUNT)
        agent.ring.add(e.ts, e.amount or 0.0, AMOUNT)
        agent.recent.append(record)
        agent.last_at = max(agent.last_at, e.ts)
        agent.tenant = e.tenant

    def _learn(self, agent_id: str, agent: _Agent, w: float) -> None:
        """Fold the agent's windows that finished before ``w`` into its baseline, once judged:
        not while its burst is active, nor a window that would itself be a burst."""
        done = [(slot, n) for slot, n in agent.pending if (slot + 1) * self.p.window_s <= w]
        if not done:
            return
        agent.pending = [item for item in agent.pending if item not in done]
        if f"{AGENT_RULE}|{agent_id}" in self.signals:
            return  # a baseline never learns the problem it is judging
        p = self.rules.orders.get(agent=agent_id)
        for _, count in done:
            if agent.history >= p.min_history and count >= max(p.min_count, p.ratio * agent.base):
                continue
            agent.history += 1
            weight = max(1.0 / agent.history, 1.0 / self.p.learn_windows)
            agent.base += weight * (count - agent.base)

    # --- evaluate --------------------------------------------------------------------------

    def evaluate(self, watermark: float) -> list[Signal]:
        for account in self.dirty:
            self._judge_account(account, watermark)
        self.dirty.clear()
        bucket = int(watermark // self.p.bucket_s)
        if bucket != self._judged:
            self._judged = bucket
            self._judge_agents(watermark)
            for fingerprint in [f for f in self.signals if f.startswith(ACCOUNT_RULE)]:
                self._judge_account(fingerprint.partition("|")[2], watermark)
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        if self.dirty:
            return at
        if not self.agents and not self.signals:
            return None
        return (int(at // self.p.bucket_s) + 1) * self.p.bucket_s

    def _judge_agents(self, w: float) -> None:
        counts: dict[str, tuple[float, float]] = {}
        for agent_id, agent in list(self.agents.items()):
            if w - agent.last_at > self.p.forget_s:
                del self.agents[agent_id]
                continue
            agent.ring.advance(w)
            observed = agent.ring.complete_sum(self.p.window_s, w, COUNT)
            counts[agent_id] = (observed, agent.base)
        ratios = [o / b for o, b in counts.values() if o > 0 and b > 0]
        busy = statistics.median(ratios) if len(ratios) >= self.p.min_peers else 1.0
        for agent_id, (observed, base) in counts.items():
            signal = self._agent_signal(agent_id, observed, base, max(1.0, busy), w)
            fingerprint = f"{AGENT_RULE}|{agent_id}"
            if signal is None:
                self.signals.pop(fingerprint, None)
            else:
                self.signals[fingerprint] = signal
            self._learn(agent_id, self.agents[agent_id], w)

    def _agent_signal(
        self, agent_id: str, observed: float, base: float, busy: float, w: float
    ) -> Signal | None:
        agent = self.agents[agent_id]
        p = self.rules.orders.get(agent=agent_id)
        if observed <= 0:
            return None
        active = f"{AGENT_RULE}|{agent_id}" in self.signals
        slack = 0.7 if active else 1.0  # hysteresis: it clears below 70 % of the bar
        warm = agent.history >= p.min_history
        expected = base * busy if warm else 0.0
        line = max(p.min_count, p.ratio * expected) if warm else p.new_agent_count
        if observed < line * slack:
            return None
        if warm and not active and poisson_sf(observed, expected) >= p.p_alarm:
            return None
        amount = agent.ring.complete_sum(p.window_s, w, AMOUNT)
        recent = [r for r in agent.recent if w - r["at"] <= p.window_s]
        accounts = {r["account"] for r in recent}
        severity = "critical" if observed >= 2 * line else "major"
        minutes = p.window_s / 60
        title = f"Agent {agent_id} made {observed:.0f} refunds / order changes in {minutes:g} min"
        title += f" (usually {expected:.0f})" if warm else " (no baseline yet)"
        evidence = {
            "agent_id": agent_id,
            "changes": int(observed),
            "expected": round(expected, 1),
            "busy_day_factor": round(busy, 2),
            "amount": round(amount, 2),
            "accounts": len(accounts),
            "recent": recent[-10:],
            "window_s": p.window_s,
        }
        return self._signal(AGENT_RULE, agent_id, severity, title, evidence, agent.tenant)

    def _judge_account(self, account: str, w: float) -> None:
        fingerprint = f"{ACCOUNT_RULE}|{account}"
        kept = self.accounts.get(account)
        recent = [r for r in kept or () if w - r["at"] <= self.p.account_window_s]
        orders = {r["order_id"] or f"#{i}" for i, r in enumerate(recent)}
        if kept is not None and not recent:
            del self.accounts[account]
        active = fingerprint in self.signals
        bar = self.p.account_orders if not active else max(1, self.p.account_orders - 1)
        if len(orders) < bar:
            self.signals.pop(fingerprint, None)
            return
        shown = mask_text(account)
        severity = "critical" if len(orders) >= 2 * self.p.account_orders else "major"
        actions = sorted({r["action"] for r in recent})
        hours_ = self.p.account_window_s / 3600
        title = f"Account {shown}: {', '.join(actions)} on {len(orders)} orders in {hours_:g} h"
        evidence = {
            "account": shown,
            "orders": len(orders),
            "agents": sorted({r["agent_id"] for r in recent if r["agent_id"]})[:10],
            "amount": round(sum(r["amount"] or 0.0 for r in recent), 2),
            "recent": recent[-10:],
            "window_s": self.p.account_window_s,
        }
        # The subject is shown everywhere an incident is: the masked account (a mobile
        # number used as a login is PII); the detector keys its state by the account itself.
        self.signals[fingerprint] = self._signal(ACCOUNT_RULE, shown, severity, title, evidence)

    def _forget_account(self, account: str) -> None:
        del self.accounts[account]
        self.signals.pop(f"{ACCOUNT_RULE}|{account}", None)

    def _signal(
        self,
        rule: str,
        subject: str,
        severity: str,
        title: str,
        evidence: dict[str, Any],
        tenant: str | None = None,
    ) -> Signal:
        return Signal(
            rule=rule,
            kind="leak",
            subject=subject,
            severity=severity,
            title=title,
            evidence=evidence,
            for_s=self.p.for_s,
            keep_firing_for_s=self.p.keep_firing_for_s,
            tenant=tenant,
        )

    # --- state -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "agents": {
                name: {
                    "ring": a.ring.snapshot(),
                    "base": a.base,
                    "history": a.history,
                    "slot": a.slot,
                    "slot_count": a.slot_count,
                    "pending": [list(item) for item in a.pending],
                    "last_at": a.last_at,
                    "recent": list(a.recent),
                    "tenant": a.tenant,
                }
                for name, a in self.agents.items()
            },
            "accounts": [[k, list(v)] for k, v in self.accounts.items()],
            "active": sorted(self.signals),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.agents.clear()
        self.accounts.clear()
        self.signals.clear()
        self.dirty.clear()
        self._judged = -1
        for name, saved in state.get("agents", {}).items():
            agent = self.agents[name] = _Agent(self._ring())
            agent.ring.restore(saved["ring"])
            agent.base, agent.history = float(saved["base"]), int(saved["history"])
            agent.slot, agent.slot_count = int(saved["slot"]), int(saved["slot_count"])
            agent.pending = [(int(slot), int(n)) for slot, n in saved.get("pending", ())]
            agent.last_at = float(saved["last_at"])
            agent.recent.extend(saved.get("recent", ()))
            agent.tenant = saved.get("tenant")
        for account, records in state.get("accounts", []):
            self.accounts[account] = deque(records, maxlen=MAX_KEPT)
            self.dirty.add(account)
        for fingerprint in state.get("active", ()):
            rule, _, subject = fingerprint.partition("|")
            # Only the hysteresis matters: the next evaluation rebuilds the signal.
            self.signals[fingerprint] = self._signal(rule, subject, "major", "", {})


SPEC = register(
    DetectorSpec(
        section="orders",
        kind="leak",
        params=OrderRules,
        scopes=("agents",),
        build=OrderDetector,
        order=55,
        title="abnormal refunds and order changes (one agent, one account)",
        notes=(
            "001 §1.5: spot abnormal orders such as fake refunds; §8.2-8.3: account security,",
            "payment risk. Per-agent overrides: [orders.agents.NAME] (a refund desk's lead...).",
        ),
    )
)
