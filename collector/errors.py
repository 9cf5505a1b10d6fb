"""Errors of the collector package: one base class, a few specific ones."""

from __future__ import annotations


class CollectorError(Exception):
    """Base error of the collector."""


class SpoolFull(CollectorError):
    """Redis is unreachable and the spool has no room left: the batch cannot be kept."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SpoolCorrupt(CollectorError):
    """The spool file holds a record that fails its checksum (not a torn tail)."""


class ProducerError(CollectorError):
    """The collector refused a batch for a reason retrying cannot fix (4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
