"""Opinion detector: public-opinion events (舆情) per watched topic.

Subject: the topic, and one rule, ``opinion.topic``: one storm about a topic
is one incident (DESIGN.md), so every condition that holds is listed in the
evidence's ``conditions`` with its figures (:mod:`monitor.detectors.conditions`),
the signal's severity is the worst of them and its title names the others.
Each condition keeps its own hysteresis. The conditions:

- ``volume``: mentions in the window against the topic's own
  trend-following baseline and a line through the half hour before (a
  topic's evening rise is not an event), judged by the Poisson tail
  probability of the count (a z-score floods at low counts) plus a minimum
  count and a ratio.
- ``negative_share``: the share of negative mentions in the window
  above a floor and well above the topic's usual share (binomial tail).
- ``high_reach``: one negative post by an author with many followers
  that uses complaint words (投诉, 曝光, 维权, 315, 避雷...); it stays active
  for ``high_reach_hold_s`` after the post. The author is shown masked.

A topic without an hour of history (a new topic, or every topic right after
the monitor is installed) is learned, not judged: its volume and negative
share fire only once it has a baseline. The high-reach complaint rule rests
on one post and needs no history; it is judged on arrival (``instant``, early
firing in :mod:`monitor.engine`).

Sentiment is the producer's when given, else :func:`monitor.sentiment.score`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from watchfloor.core.events import Event, SocialMention
from watchfloor.monitor.detectors.base import Signal
from watchfloor.monitor.detectors.conditions import Breach, merge
from watchfloor.monitor.detectors.due import STRICT, earliest, grid_after
from watchfloor.monitor.detectors.learning import GatedRing
from watchfloor.monitor.detectors.opinion_storm import (
    MIN_SHARE,
    NegativeStorm,
    binomial_sf,
    usual_mention_rate,
    usual_negative_rate,
    usual_share,
)
from watchfloor.monitor.detectors.opinion_volume import (
    MENTIONS,
    NEGATIVE,
    Dispersion,
    ordinary_mentions,
    volume,
)
from watchfloor.monitor.detectors.registry import DetectorSpec, register, setting
from watchfloor.monitor.rule_set import Rules
from watchfloor.monitor.sentiment import contains_any, score
from watchfloor.monitor.windows import Ring, Trend
from watchfloor.security.pii import mask_text

logger = logging.getLogger(__name__)

RULE: Final = "opinion.topic"
CONDITIONS: Final = ("volume", "negative_share", "high_reach")
COLD_S = 3600.0  # history a topic needs before its volume and negative share are judged


COMPLAINT_WORDS: Final = (
    *("投诉", "曝光", "维权", "315", "避雷", "骗", "假货", "欺诈", "差评", "黑心", "坑人", "举报"),
    *("退款难", "虚假宣传", "维权群", "消协"),
    *("scam", "fraud", "fake", "ripoff", "rip-off", "lawsuit", "boycott", "never buy"),
)


@dataclass(frozen=True, slots=True)
class OpinionRules:
    """``[opinion]``: the settings of the public-opinion detector."""

    enabled: bool = setting(True, "run this detector")
    bucket_s: float = setting(30.0, "sub-bucket of the ring windows", above_zero=True)
    window_s: float = setting(600.0, "mentions over the last 10 min", above_zero=True)
    baseline_tau_s: float = setting(
        3600.0, "time constant of the topic's trend baseline", above_zero=True
    )
    recent_s: float = setting(1800.0, "and above a line through the 30 min before the window")
    floor_per_window: float = setting(
        2.0, "a topic without history expects at least 2 mentions per window"
    )
    p_value: float = setting(
        1e-6, "Poisson tail of the count (binomial for the negative share)", high=1.0
    )
    min_count: float = setting(20.0, "volume: at least 20 mentions ...")
    ratio: float = setting(2.0, "... and 2x both the baseline and the fitted line")
    major_ratio: float = setting(4.0, "volume major from 4x")
    critical_ratio: float = setting(10.0, "volume critical from 10x")
    negative_below: float = setting(-0.2, "sentiment below this is negative", low=-1.0, high=1.0)
    negative_share: float = setting(0.5, "negative share >= 50 % ...", high=1.0)
    negative_share_rise: float = setting(
        0.25, "... and >= the usual share + 25 points ...", high=1.0
    )
    min_negative: float = setting(10.0, "... with at least 10 negative mentions")
    high_reach_followers: int = setting(
        100_000, "high reach: a complaint post by an author this big"
    )
    critical_followers: int = setting(1_000_000, "high reach is critical from this many followers")
    high_reach_sentiment: float = setting(
        -0.2, "a high-reach post at or below this sentiment", low=-1.0, high=1.0
    )
    high_reach_hold_s: float = setting(1800.0, "high reach stays active this long after the post")
    complaint_words: tuple[str, ...] = setting(
        COMPLAINT_WORDS, "a high-reach post must hold one of these"
    )
    for_s: float = setting(0.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        600.0, "resolving: keeps firing this long after it stops holding"
    )


class _Topic:
    __slots__ = ("dispersion", "last", "post", "ring", "storm", "tenant", "unlearned")

    def __init__(self, p: OpinionRules) -> None:
        tau = p.baseline_tau_s / p.bucket_s
        # Baselines get a bucket once it is older than the window; the ring keeps
        # ``recent_s`` more for the line fitted to the minutes before the window.
        lag = max(1, round(p.window_s / p.bucket_s)) + 2
        n = lag + round(p.recent_s / p.bucket_s) + 1
        baselines: dict[int | str, Trend] = {MENTIONS: Trend(tau), NEGATIVE: Trend(tau)}
        self.ring = GatedRing(p.bucket_s, n, width=2, baselines=baselines, lag=lag)
        self.unlearned: float | None = None  # since when a storm is not learned
        self.post: dict[str, Any] | None = None  # the loudest high-reach complaint held
        self.tenant: str | None = None
        self.last = -math.inf  # event time of the newest mention
        self.storm = NegativeStorm()  # the sequential test on negative mentions
        self.dispersion = Dispersion()  # how bursty its volume is, learned


class OpinionDetector:
    """Mention volume, negative share and high-reach complaints per topic."""

    name: ClassVar[str] = "opinion"
    event_types: ClassVar[frozenset[str]] = frozenset({"social.mention"})
    instant_types: ClassVar[frozenset[str]] = frozenset({"social.mention"})
    """A single high-reach complaint post is judged on arrival (engine: early firing)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.base = rules.opinion.base
        self.topics: dict[str, _Topic] = {}
        self.signals: dict[str, Signal] = {}
        self.dirty: set[str] = set()
        self._scanned = -1

    def observe(self, event: Event) -> bool | None:
        if type(event) is not SocialMention:
            return None
        topic = self.topics.get(event.topic)
        if topic is None:
            topic = self.topics[event.topic] = _Topic(self.base)
        p = self.rules.opinion.get(topic=event.topic)
        sentiment = event.sentiment if event.sentiment is not None else score(event.text)
        taken = topic.ring.add(event.ts, 1.0, MENTIONS)
        topic.last = max(topic.last, event.ts)
        negative = sentiment <= p.negative_below
        if negative:
            topic.ring.add(event.ts, 1.0, NEGATIVE)
        if topic.storm.mention(event.ts, negative, _usual(topic.ring, p), p):
            self.dirty.add(event.topic)  # judged at the evaluation that releases it
        topic.tenant = event.tenant
        followers = event.followers or 0
        if followers >= p.high_reach_followers and sentiment <= p.high_reach_sentiment:
            words = contains_any(event.text, p.complaint_words)
            if words:
                self._hold_post(topic, event, sentiment, words)
                self.dirty.add(event.topic)
        return taken

    def _hold_post(
        self, topic: _Topic, e: SocialMention, sentiment: float, words: list[str]
    ) -> None:
        held = topic.post
        if held is not None and held["followers"] > (e.followers or 0):
            held["until"] = max(held["until"], e.ts)  # the loudest post stays, the clock restarts
            return
        topic.post = _post(e, sentiment, words)

    def instant(self, event: Event, older: Sequence[Event] = ()) -> Signal | None:
        """A high-reach complaint post, judged on arrival (no state changes): the signal
        the evaluation after it will give (the loudest complaint post held, this one included)."""
        if type(event) is not SocialMention:
            return None
        p = self.rules.opinion.get(topic=event.topic)
        if not p.enabled:
            return None
        mine = self._qualifying_post(event, p)
        if mine is None:
            return None
        followers = mine["followers"]
        topic = self.topics.get(event.topic)
        held = topic.post if topic is not None else None
        same = [
            e
            for e in older
            if type(e) is SocialMention and e.topic == event.topic and e.ts < event.ts
        ]
        for e in sorted(same, key=lambda m: m.ts):  # buffered: a louder one would be held
            other = self._qualifying_post(e, p)  # type: ignore[arg-type]
            if other is not None and (held is None or other["followers"] >= held["followers"]):
                held = other
        if held is not None and held["followers"] > followers:
            mine = {**held, "until": max(held["until"], event.ts)}
        # The other conditions as the last evaluation saw them; the next one may
        # differ, which the engine confirms with a quiet evidence update.
        found = [b for b in self._held_breaches(event.topic) if b.condition != "high_reach"]
        return _topic_signal(event.topic, [*found, _high_reach(event.topic, mine, p)], p)

    def _qualifying_post(self, e: SocialMention, p: OpinionRules) -> dict[str, Any] | None:
        """The held-post record of a high-reach negative post with complaint words, else None."""
        followers = e.followers or 0
        if followers < p.high_reach_followers:
            return None
        sentiment = e.sentiment if e.sentiment is not None else score(e.text)
        if sentiment > p.high_reach_sentiment:
            return None
        words = contains_any(e.text, p.complaint_words)
        return _post(e, sentiment, words) if words else None

    def evaluate(self, watermark: float) -> list[Signal]:
        bucket = int(watermark // self.base.bucket_s)
        names: Any = self.topics if bucket != self._scanned else self.dirty
        self._scanned = bucket
        for name in list(names):
            self._judge(name, self.topics[name], watermark)
        self.dirty.clear()
        return list(self.signals.values())

    def next_due(self, at: float) -> float | None:
        """The next scan that may change the answer (replay, :mod:`monitor.engine`): while a
        topic's window holds mentions, and when a held high-reach post expires."""
        due: list[float | None] = []
        for name, topic in self.topics.items():
            p = self.rules.opinion.get(topic=name)
            bucket = p.bucket_s
            if topic.post is not None:
                expires = topic.post["until"] + p.high_reach_hold_s + STRICT
                due.append(grid_after(expires, at, bucket))
            # The bucket of the newest mention leaves the window at this time.
            gone = -math.inf
            if topic.last > -math.inf:
                gone = (math.floor(topic.last / bucket) + 1) * bucket + p.window_s + bucket
            if at < gone or name in self.signals:
                due.append(grid_after(at, at, bucket))
        return earliest(due)

    def _judge(self, name: str, topic: _Topic, w: float) -> None:
        p = self.rules.opinion.get(topic=name)
        topic.ring.advance(w)
        post = topic.post
        if post is not None and w - post["until"] > p.high_reach_hold_s:
            topic.post = post = None
        found: list[Breach] = []
        if p.enabled:
            old = {b.condition for b in self._held_breaches(name)}
            parts = (
                _volume(name, topic, p, w, old),
                _negative(name, topic, p, w, old) or _storm(name, topic, p, w, old),
                _high_reach(name, post, p) if post is not None else None,
            )
            found = [b for b in parts if b is not None]
        storm = any(b.condition != "high_reach" for b in found)
        _learn(topic, p, w, storm)
        _learn_dispersion(topic, p, w, storm)
        if found:
            self.signals[name] = _topic_signal(name, found, p)
        else:
            self.signals.pop(name, None)

    def _held_breaches(self, name: str) -> list[Breach]:
        """The conditions of the topic's active signal (for hysteresis and early fires)."""
        signal = self.signals.get(name)
        if signal is None:
            return []
        return [
            Breach(
                c["condition"],
                c["severity"],
                c["title"],
                {k: v for k, v in c.items() if k not in ("condition", "severity", "title")},
            )
            for c in signal.evidence.get("conditions", ())
        ]

    def snapshot(self) -> dict[str, Any]:
        return {
            "topics": {
                n: {
                    "ring": t.ring.snapshot(),
                    "post": t.post,
                    "tenant": t.tenant,
                    "last": t.last,
                    "storm": t.storm.snapshot(),
                    "dispersion": t.dispersion.snapshot(),
                    "paused": t.ring.paused_state(),
                    "unlearned": t.unlearned,
                }
                for n, t in self.topics.items()
            },
            "active": {
                name: sorted(b.condition for b in self._held_breaches(name))
                for name in sorted(self.signals)
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.topics.clear()
        self.signals.clear()
        self._scanned = -1
        for name, saved in state.get("topics", {}).items():
            topic = self.topics[name] = _Topic(self.base)
            topic.ring.restore(saved["ring"])
            topic.post = saved.get("post")
            topic.tenant = saved.get("tenant")
            topic.storm.restore(saved.get("storm"))
            topic.dispersion.restore(saved.get("dispersion"))
            topic.ring.restore_paused(saved.get("paused"))
            topic.unlearned = saved.get("unlearned")
            head = topic.ring.head
            topic.last = float(saved.get("last", (head + 1) * self.base.bucket_s))
        for name, conditions in _active_conditions(state.get("active", ())).items():
            # Placeholders until the next evaluation: they carry the hysteresis only.
            found = [Breach(c, "minor", "", {}) for c in conditions]
            self.signals[name] = _topic_signal(name, found, self.base)


def _learn(topic: _Topic, p: OpinionRules, w: float, storm: bool) -> None:
    """The baselines do not learn a storm (its first ``baseline_tau_s``: a level that
    lasts longer is the topic's new normal)."""
    if storm and topic.unlearned is None:
        topic.unlearned = w
    elif not storm:
        topic.unlearned = None
    pausing = topic.unlearned is not None and w - topic.unlearned < p.baseline_tau_s
    if pausing and not topic.ring.pausing():
        topic.ring.pause(w - p.window_s)
    elif not pausing and topic.ring.pausing():
        topic.ring.resume(w)


def _learn_dispersion(topic: _Topic, p: OpinionRules, w: float, storm: bool) -> None:
    """A window of ordinary traffic teaches the topic's burstiness; a storm's does not."""
    ring = topic.ring
    if storm:
        topic.dispersion.spoil()
    if ring.warm(MENTIONS) < COLD_S:
        return
    observed = ring.complete_sum(p.window_s, w, MENTIONS)
    learn = not storm and topic.unlearned is None
    expected = ordinary_mentions(ring, p, w)
    topic.dispersion.window(int(w // p.window_s), observed, expected, learn)


def _active_conditions(active: Any) -> dict[str, list[str]]:
    """Topic -> active conditions, also from a checkpoint of the three-rule era
    (``["opinion.volume|brand-x", ...]``)."""
    if isinstance(active, dict):
        return {name: list(conditions) for name, conditions in active.items()}
    out: dict[str, list[str]] = {}
    for fingerprint in active:
        rule, _, subject = fingerprint.partition("|")
        condition = rule.removeprefix("opinion.")
        if condition in CONDITIONS:
            out.setdefault(subject, []).append(condition)
    return out


def _topic_signal(name: str, found: list[Breach], p: OpinionRules) -> Signal:
    """One signal for the topic: every condition that holds, the worst one's severity."""
    worst, title, merged = merge(found)
    return Signal(
        rule=RULE,
        kind="opinion",
        subject=name,
        severity=worst.severity,
        title=title,
        evidence={"topic": name, **merged},
        for_s=p.for_s,
        keep_firing_for_s=p.keep_firing_for_s,
    )


def _volume(name: str, topic: _Topic, p: OpinionRules, w: float, old: set[str]) -> Breach | None:
    if topic.ring.warm(MENTIONS) < COLD_S:
        # A topic without an hour of history (new, or the monitor just installed)
        # is learned, not judged: high volume against no baseline is not news.
        return None
    return volume(name, topic.ring, topic.dispersion.alpha(), p, w, old)


def _negative(name: str, topic: _Topic, p: OpinionRules, w: float, old: set[str]) -> Breach | None:
    ring = topic.ring
    mentions = ring.complete_sum(p.window_s, w, MENTIONS)
    negative = ring.complete_sum(p.window_s, w, NEGATIVE)
    if negative < p.min_negative or mentions <= 0:
        return None
    share = negative / mentions
    usual = usual_share(ring, NEGATIVE, MENTIONS)
    if ring.warm(NEGATIVE) < COLD_S:
        return None  # no usual share known yet: learned, not judged
    bar = max(p.negative_share, usual + p.negative_share_rise)
    if "negative_share" in old:
        bar -= 0.1
    elif binomial_sf(int(negative), int(mentions), max(usual, MIN_SHARE)) >= p.p_value:
        return None  # a chance wobble of the usual share
    if share < bar:
        return None
    severity = "major" if share >= 0.75 and negative >= 2 * p.min_negative else "minor"
    title = f"{share:.0%} of mentions of {name} are negative ({negative:.0f} of {mentions:.0f})"
    evidence = {
        "negative": int(negative),
        "mentions": int(mentions),
        "share": round(share, 3),
        "usual_share": round(usual, 3),
    }
    return Breach("negative_share", severity, title, evidence)


def _storm(name: str, topic: _Topic, p: OpinionRules, w: float, old: set[str]) -> Breach | None:
    """Negative mentions surging, seen by the sequential test before the window fills."""
    ring = topic.ring
    if ring.warm(NEGATIVE) < COLD_S:
        return None  # no usual rate known yet: learned, not judged
    return topic.storm.breach(name, w, _usual(ring, p), p, "negative_share" in old)


def _usual(ring: Ring, p: OpinionRules) -> tuple[float, float, float]:
    """The topic's usual negative mentions and mentions per second, and its negative share."""
    return (
        usual_negative_rate(ring, NEGATIVE, MENTIONS, p),
        usual_mention_rate(ring, MENTIONS, p),
        usual_share(ring, NEGATIVE, MENTIONS),
    )


def _high_reach(name: str, post: dict[str, Any], p: OpinionRules) -> Breach:
    followers = post["followers"]
    severity = "critical" if followers >= p.critical_followers else "major"
    title = (
        f"High-reach complaint about {name} on {post['platform']} "
        f"({followers:,} followers): {', '.join(post['complaint_words'][:3])}"
    )
    evidence = {k: v for k, v in post.items() if k != "until"}
    return Breach("high_reach", severity, title, evidence)


def _post(e: SocialMention, sentiment: float, words: list[str]) -> dict[str, Any]:
    return {
        "ts": e.ts,
        "until": e.ts,
        "platform": e.platform,
        "followers": e.followers or 0,
        "author": _mask_author(e.author),
        "url": e.url,
        "excerpt": mask_text(e.text[:140]),
        "sentiment": round(sentiment, 2),
        "complaint_words": words,
    }


def _mask_author(author: str | None) -> str | None:
    if not author:
        return None
    return author[:1] + "***"


SPEC = register(
    DetectorSpec(
        section="opinion",
        kind="opinion",
        params=OpinionRules,
        scopes=("topics",),
        build=OpinionDetector,
        order=40,
        title="public-opinion events (舆情)",
        notes=(
            "001 §7.4 sudden public-opinion event.",
            "One rule per topic (opinion.topic): volume, negative share and a high-reach",
            "complaint post are listed in its evidence, its severity is the worst condition's.",
        ),
    )
)
