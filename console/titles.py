"""An incident's title in the interface's language.

English shows the engine's own title; Chinese composes it from the incident's machine
fields (:mod:`watchfloor.core.incident_titles`, shared with the notifications). A manual
incident's title is a person's words and is shown as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchfloor.core.incident_titles import zh_title


def incident_title(incident: Mapping[str, Any], lang: str) -> str:
    """The title to show: the engine's own in English, composed from its fields in Chinese."""
    title = str(incident.get("title") or incident.get("id") or "")
    if lang != "zh" or incident.get("kind") == "manual":
        return title
    return zh_title(incident) or title
