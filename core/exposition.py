"""The Prometheus exposition format a scraper asked for, for both services' ``/metrics``.

prometheus_client picks the encoder from the ``Accept`` header (OpenMetrics for a
Prometheus server, text 0.0.4 for everyone else) but raises ``TypeError`` on a
version it cannot compare (``version=abc``): a header anyone may send to an
unauthenticated endpoint must not turn into a 500, so such a header gets the
plain text format, as a missing one does.
"""

from __future__ import annotations

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.registry import Collector


def render(registry: Collector, accept: str = "") -> tuple[bytes, str]:
    """``registry`` in the format ``accept`` asks for: (body, content type)."""
    try:
        encoder, content_type = choose_encoder(accept)
    except (TypeError, ValueError):  # a malformed version parameter
        encoder, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
    return encoder(registry), content_type
