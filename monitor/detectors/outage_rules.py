"""The ``[outage]`` section's settings, read by the outage detector and its three kinds of
evidence (probes, heartbeats, silent intake).

A module of its own so that those modules and :mod:`monitor.detectors.outage`, which
composes them, import it one way (no import circle).
"""

from __future__ import annotations

from dataclasses import dataclass

from watchfloor.core.vocabulary import SEVERITIES
from watchfloor.monitor.detectors.registry import setting


@dataclass(frozen=True, slots=True)
class OutageRules:
    """``[outage]``: probes, heartbeats and silent intake (one section, three kinds of evidence)."""

    enabled: bool = setting(True, "run this detector")
    down_probes: int = setting(2, "down on >= 2 consecutive failed probes ...")
    down_after_s: float = setting(
        20.0, "... or failed probes spanning 20 s (one failed probe is no outage)"
    )
    up_probes_to_clear: int = setting(2, "2 good probes in a row clear it (no re-paging on flaps)")
    alert_sources: tuple[str, ...] = setting(
        ("alertmanager",),
        "health events from these sources are alerts another system already judged "
        "(Alertmanager's `for:`): one down or degraded is decisive, not one probe of many",
    )
    down_severity: str = setting(
        "critical", "severity of a component that is down", choices=SEVERITIES
    )
    degraded_probes: int = setting(2, "degraded / high error rate on >= 2 consecutive probes")
    error_rate_limit: float = setting(
        0.05, "a probe's error rate at or above this is degraded", high=1.0
    )
    error_rate_major: float = setting(0.25, "degraded is major from this error rate", high=1.0)
    flap_probes: int = setting(10, "flapping: among the last 10 probes ...")
    flap_failures: int = setting(4, "... at least 4 failures ...")
    flap_ratio: float = setting(0.5, "... and at least half of them ...", high=1.0)
    flapping_for_s: float = setting(
        300.0, "... for 5 min: a flap that settles within minutes is no incident"
    )
    heartbeat_factor: float = setting(
        3.0, "a source is lost when silent > 3x its usual interval ..."
    )
    heartbeat_min_s: float = setting(30.0, "... and at least 30 s")
    heartbeat_min_beats: int = setting(3, "learn the interval from 3 beats first")
    heartbeat_severity: str = setting("major", "severity of a lost heartbeat", choices=SEVERITIES)
    silent_bucket_s: float = setting(30.0, "sub-bucket of the intake windows", above_zero=True)
    silent_window_s: float = setting(
        600.0, "intake silent over the last 10 min ...", above_zero=True
    )
    silent_tau_s: float = setting(3600.0, "... against an hour-long baseline ...", above_zero=True)
    silent_min_history_s: float = setting(3600.0, "... with an hour of history ...")
    silent_min_expected: float = setting(
        30.0, "... that expected >= 30 contacts (not a quiet night)"
    )
    silent_max_ratio: float = setting(0.1, "... and got <= 10 % of them ...", high=1.0)
    silent_before_ratio: float = setting(
        0.5, "... after a window that still had >= 50 % (sudden) ...", high=1.0
    )
    silent_p: float = setting(1e-6, "... with Poisson P(X <= observed) below this", high=1.0)
    silent_false_alarms_per_hour: float = setting(
        0.006,
        "or sooner: a sequential test (Poisson CUSUM per bucket, rate <= silent_max_ratio) "
        "at this false-alarm budget per subject-hour (about one a week)",
        above_zero=True,
    )
    for_s: float = setting(0.0, "pending: the condition holds this long before it fires")
    keep_firing_for_s: float = setting(
        60.0, "resolving: keeps firing this long after it stops holding"
    )
