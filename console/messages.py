"""Cross-screen facts (past tense) that the API client and screens post to the app.

The client posts what happened on the wire; the app applies it to the board
model and tells the screens which rows changed.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class LiveConnected(Message):
    """The live WebSocket is open (a snapshot or a resume follows)."""


class LiveDisconnected(Message):
    """The live WebSocket closed; the client retries after ``retry_in`` seconds."""

    def __init__(self, reason: str, retry_in: float, fatal: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.retry_in = retry_in
        self.fatal = fatal


class SnapshotReceived(Message):
    def __init__(self, snapshot: dict[str, Any]) -> None:
        super().__init__()
        self.snapshot = snapshot


class ChangesReceived(Message):
    """A coalesced burst of changes, in stream order."""

    def __init__(self, changes: list[dict[str, Any]]) -> None:
        super().__init__()
        self.changes = changes


class PingReceived(Message):
    def __init__(self, at: float | None) -> None:
        super().__init__()
        self.at = at


class IncidentOpened(Message):
    """The user asked to open an incident's screen."""

    def __init__(self, incident_id: str) -> None:
        super().__init__()
        self.incident_id = incident_id


class RunOpened(Message):
    """The user asked to open a run that has no incident (a drill started on its own)."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
