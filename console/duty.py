"""The header's "on duty now" line, from the answer of ``GET /v1/roster``.

Names first, roles in the interface's language: ``On duty: 张伟 (duty manager) ·
李娜 (on-call)``. The API already resolved shifts and overrides in the site's time
zone; the console only words the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

ROSTER_REFRESH_S: Final = 60.0
"""How often the console asks the API who is on duty (shifts change on the hour)."""
HEADER_ROLES: Final = ("duty_manager", "oncall", "security_officer", "backup")


def duty_line(answer: dict[str, Any], tr: Callable[..., str]) -> str:
    """``On duty: name (role) · ...``; empty when no roster was imported or nobody is on."""
    on_duty = answer.get("on_duty")
    if not answer.get("imported") or not isinstance(on_duty, dict):
        return ""
    parts = []
    for role in HEADER_ROLES:
        people = on_duty.get(role) or []
        names = "、".join(str(p.get("name") or p.get("id")) for p in people if isinstance(p, dict))
        if names:
            parts.append(f"{names} ({tr(f'role.{role}')})")
    return f"{tr('duty.now')}: {' · '.join(parts)}" if parts else ""
