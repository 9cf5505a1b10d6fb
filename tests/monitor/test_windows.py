"""Ring buffers, trend baselines and Poisson tails."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchfloor.monitor.windows import HourlyProfile, Ring, Trend, poisson_cdf, poisson_sf

T0 = 1_763_000_000.0  # a bucket-aligned event time (multiple of 10 and 60)


def test_complete_sum_counts_only_finished_buckets_before_the_watermark() -> None:
    ring = Ring(10.0, 8)
    for ts in (T0, T0 + 5, T0 + 12, T0 + 25, T0 + 31):
        ring.add(ts)
    # watermark T0+30: complete buckets are [T0, T0+10), [T0+10, T0+20), [T0+20, T0+30)
    assert ring.complete_sum(30, T0 + 30) == 4
    assert ring.complete_sum(10, T0 + 30) == 1
    assert ring.complete_sum(30, T0 + 40) == 3


def test_old_events_are_refused_and_memory_stays_bounded() -> None:
    ring = Ring(10.0, 4)
    ring.add(T0 + 100)
    assert ring.add(T0 + 50) is False
    assert ring.add(T0 + 70) is True
    for k in range(1000):
        ring.add(T0 + 100 + k * 10)
    assert len(ring.values) == 4


def test_evicted_buckets_feed_the_baseline_including_gaps() -> None:
    trend = Trend(6.0)
    ring = Ring(10.0, 3, baselines={0: trend})
    for k in range(20):
        ring.add(T0 + k * 10, 5.0)
    assert trend.fed == 17
    assert trend.level() == pytest.approx(5.0)
    ring.advance(T0 + 400)
    assert trend.fed == 40 - 2
    assert trend.level() < 0.1
    ring.advance(T0 + 10_000)  # silence longer than 4 time constants: start afresh
    assert (trend.fed, trend.level()) == (0, 0.0)


def test_trend_follows_a_linear_ramp_without_lag() -> None:
    trend = Trend(60.0)
    for k in range(1000):
        trend.feed(10.0 + 0.1 * k)
    assert trend.level() == pytest.approx(10.0 + 0.1 * 999, rel=0.01)
    assert trend.forecast(10) == pytest.approx(10.0 + 0.1 * 1009, rel=0.01)
    assert trend.smooth() < trend.level()


def test_trend_zero_gap_closed_form_matches_feeding_zeros() -> None:
    a, b = Trend(20.0), Trend(20.0)
    for t in (a, b):
        for k in range(50):
            t.feed(float(k % 7))
    a.feed_zeros(33)
    for _ in range(33):
        b.feed(0.0)
    assert a.s1 == pytest.approx(b.s1)
    assert a.s2 == pytest.approx(b.s2)


def test_a_lag_feeds_the_baseline_before_buckets_leave_the_ring() -> None:
    trend = Trend(4.0)
    ring = Ring(10.0, 10, baselines={0: trend}, lag=3)
    for k in range(8):
        ring.add(T0 + k * 10, float(k))
    assert trend.fed == 5  # buckets 0..4 are 3 or more buckets old
    assert ring.complete_sum(70, T0 + 80) == sum(range(1, 8))  # and still readable


def test_a_line_through_a_ramp_forecasts_where_it_goes() -> None:
    ring = Ring(10.0, 40)
    for k in range(30):
        ring.add(T0 + k * 10, 2.0 * k)
    # fit buckets 0..19 (values 0..38), forecast the 5 buckets 25..29
    forecast = ring.linear_forecast(200, T0 + 200, 50, T0 + 300)
    assert forecast == pytest.approx(sum(2.0 * k for k in range(25, 30)))


def test_ring_round_trips_through_snapshot() -> None:
    ring = Ring(10.0, 6, width=2, baselines={0: Trend(5.0)})
    for k in range(40):
        ring.add(T0 + k * 3, 1.0, k % 2)
    copy = Ring(10.0, 6, width=2, baselines={0: Trend(5.0)})
    copy.restore(ring.snapshot())
    assert copy.values == ring.values
    assert copy.head == ring.head
    assert copy.baselines[0].snapshot() == ring.baselines[0].snapshot()


def test_restore_of_a_differently_shaped_ring_starts_afresh() -> None:
    ring = Ring(10.0, 6)
    ring.add(T0)
    other = Ring(10.0, 9)
    other.restore(ring.snapshot())
    assert other.head == -1


def test_hourly_profile_answers_for_the_same_hour_last_week() -> None:
    profile = HourlyProfile()
    profile.add(T0, 3)
    profile.add(T0 + 60, 2)
    assert profile.last_week(T0 + 7 * 86400) == 5
    assert profile.last_week(T0 + 86400) is None
    copy = HourlyProfile()
    copy.restore(profile.snapshot())
    assert copy.last_week(T0 + 7 * 86400 + 30) == 5


@pytest.mark.parametrize(
    ("k", "lam"), [(0, 3.0), (1, 3.0), (5, 3.0), (20, 5.0), (60, 30.0), (3, 0.5)]
)
def test_poisson_tail_matches_the_direct_sum(k: int, lam: float) -> None:
    direct = sum(math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k, k + 300))
    assert poisson_sf(k, lam) == pytest.approx(direct, rel=1e-6, abs=1e-15)
    assert poisson_cdf(k, lam) + poisson_sf(k + 1, lam) == pytest.approx(1.0)


LATENESS = 5.0


@st.composite
def in_lateness_stream(draw: st.DrawFn) -> list[tuple[float, float]]:
    """Events whose ts never lies more than LATENESS behind the largest ts so far."""
    count = draw(st.integers(1, 80))
    events: list[tuple[float, float]] = []
    high = T0
    for _ in range(count):
        step = draw(st.floats(-LATENESS, 12.0, allow_nan=False))
        ts = max(high - LATENESS, high + step)
        high = max(high, ts)
        events.append((ts, float(draw(st.integers(1, 5)))))
    return events


@settings(max_examples=150, deadline=None)
@given(in_lateness_stream())
def test_out_of_order_events_within_lateness_give_the_sorted_result(
    events: list[tuple[float, float]],
) -> None:
    def fill(stream: list[tuple[float, float]]) -> Ring:
        ring = Ring(10.0, 6, baselines={0: Trend(3.0)}, lag=3)
        for ts, value in stream:
            ring.add(ts, value)
        return ring

    shuffled, ordered = fill(events), fill(sorted(events))
    watermark = max(ts for ts, _ in events) - LATENESS
    assert shuffled.complete_sum(30, watermark) == pytest.approx(
        ordered.complete_sum(30, watermark)
    )
    shuffled.advance(watermark + 100)
    ordered.advance(watermark + 100)
    assert shuffled.baselines[0].snapshot() == pytest.approx(ordered.baselines[0].snapshot())
    assert shuffled.linear_forecast(30, watermark, 10, watermark + 10) == pytest.approx(
        ordered.linear_forecast(30, watermark, 10, watermark + 10)
    )
