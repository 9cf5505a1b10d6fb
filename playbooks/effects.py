"""The side effects a run change causes, carried out by the timer loop after the commit.

Each is a member ``run|step|fx|n`` of ``wf:runs:timers`` with its payload in
``wf:runs:effects``: a msgpack map tagged by ``type`` (the shape stored before
these structs, so effects already waiting load as they are).
"""

from __future__ import annotations

from typing import Any

import msgspec

from watchfloor.playbooks import codec


class AuditRecord(msgspec.Struct):
    """The arguments of one ``AuditLog.append``."""

    actor: str
    role: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]


class AuditEffect(msgspec.Struct, tag_field="type", tag="audit"):
    record: AuditRecord


class LinkEffect(msgspec.Struct, tag_field="type", tag="link"):
    """Point the incident at its run (``playbook_run``)."""

    incident: str


class ActionEffect(msgspec.Struct, tag_field="type", tag="action"):
    """Carry out attempt ``attempt`` of the step's action (idempotency ``key``)."""

    attempt: int
    key: str


class NotifyEffect(msgspec.Struct, tag_field="type", tag="notify"):
    """Tell ``target`` about escalation ``escalation`` of the step."""

    target: str
    escalation: int
    key: str


Effect = AuditEffect | LinkEffect | ActionEffect | NotifyEffect
Delivery = ActionEffect | NotifyEffect
"""The effects that call out to receivers (held for the delivery lease)."""
QUICK: tuple[type, ...] = (AuditEffect, LinkEffect)
"""Effects carried out right after their commit, before the loop's next tick."""


def encode_effect(effect: Effect) -> bytes:
    return codec.encode(effect)


def decode_effect(raw: bytes | str) -> Effect:
    effect: Effect = codec.decode(raw, Effect)
    return effect
