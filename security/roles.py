"""Roles and what each may do (DESIGN.md's matrix). Deny by default.

A permission not listed for a role is refused; an unknown role has none.
Every endpoint names the one permission it needs (``security.auth``), so the
matrix below is the whole access policy.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Permission(StrEnum):
    SEND_EVENTS = "send_events"
    READ_BOARD = "read_board"
    ACK = "ack"
    """Acknowledge and resolve incidents, open manual incidents, set flags and silences."""
    RUN_STEPS = "run_steps"
    """Mark playbook steps done, escalate them."""
    START_PLAYBOOK = "start_playbook"
    READ_AUDIT = "read_audit"
    MANAGE_TOKENS = "manage_tokens"


class Role(StrEnum):
    PRODUCER = "producer"
    VIEWER = "viewer"
    ONCALL = "oncall"
    DUTY_MANAGER = "duty_manager"
    SECURITY_OFFICER = "security_officer"
    ADMIN = "admin"


P = Permission
ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.PRODUCER: frozenset({P.SEND_EVENTS}),
    Role.VIEWER: frozenset({P.READ_BOARD}),
    Role.ONCALL: frozenset({P.READ_BOARD, P.RUN_STEPS}),
    Role.DUTY_MANAGER: frozenset({P.READ_BOARD, P.ACK, P.RUN_STEPS, P.START_PLAYBOOK}),
    Role.SECURITY_OFFICER: frozenset({P.READ_BOARD, P.READ_AUDIT}),
    Role.ADMIN: frozenset(Permission),
}
ROLES: Final = frozenset(r.value for r in Role)


def allows(role: str, permission: Permission) -> bool:
    """True if ``role`` holds ``permission``; unknown roles hold nothing."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def permissions_of(role: str) -> frozenset[Permission]:
    try:
        return ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()


# --- playbook steps: the runner enforces these, the API reports them to consoles ------------
# One definition, so that what a console offers and what the runner accepts never drift.


def may_work_step(role: str, owner: str) -> bool:
    """Mark done, escalate or retry a step: its owner role, or anyone who runs steps."""
    return role == owner or allows(role, Permission.RUN_STEPS)


def may_approve_step(role: str, approver: str) -> bool:
    """An approval always needs the role the playbook names (or admin)."""
    return role in (approver, Role.ADMIN.value)


def may_skip_step(role: str, pending_approver: str | None) -> bool:
    """Skip a step: whoever starts playbooks, and, while the step still waits for an
    approval, only someone who could give it: skipping must not bypass the approval."""
    if not allows(role, Permission.START_PLAYBOOK):
        return False
    return pending_approver is None or may_approve_step(role, pending_approver)
