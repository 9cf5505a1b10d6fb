"""Errors of the playbooks package: one base class, a few specific ones.

The API maps them to HTTP statuses (``status``): unknown playbook, run or step
404, a transition the run's state does not allow 409, a role that may not do
it 403, a playbook file that fails its check 400.
"""

from __future__ import annotations


class PlaybookError(Exception):
    """Base error of the playbooks package."""

    status = 400


class UnknownPlaybook(PlaybookError):
    status = 404


class RunNotFound(PlaybookError):
    status = 404


class StepNotFound(PlaybookError):
    status = 404


class RunConflict(PlaybookError):
    """The run or step is not in a state that allows this (409)."""

    status = 409


class NotAllowed(PlaybookError):
    """The caller's role may not do this to this step or run (403)."""

    status = 403


class PlaybookInvalid(PlaybookError):
    """A playbook file failed its check; ``errors`` lists every problem found."""

    def __init__(self, errors: list) -> None:  # list[CheckError]
        self.errors = errors
        first = str(errors[0]) if errors else "invalid playbook"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ActionFailed(PlaybookError):
    """A step's action (a webhook, an internal call) failed after its retries."""


class IncidentMissing(PlaybookError):
    """The incident a run is started for does not exist (404)."""

    status = 404
