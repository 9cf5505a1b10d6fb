"""A notification's fields in the site's language (``[console] lang``: ``en`` or ``zh``).

Playbook templates are written once (``【咨询激增】队列 {subject}：{title}``); the fields
they name come from the run, whose ``title`` is the engine's English sentence and whose
``severity`` is a machine word. In Chinese the title is composed from the incident's
machine fields as the console composes it (the incident is read when the message is
sent, so its latest evidence counts) and the severity is named (``紧急``).
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from watchfloor.core.incident_titles import KIND_ZH, SEVERITY_ZH, zh_title
from watchfloor.core.incidents import IncidentError, IncidentStore

logger = logging.getLogger(__name__)


async def localized_values(
    redis: aioredis.Redis, values: dict[str, Any], lang: str
) -> dict[str, Any]:
    """``values`` with ``title`` and ``severity`` in ``lang`` (unchanged in English)."""
    if lang != "zh":
        return values
    out = dict(values)
    out["severity"] = SEVERITY_ZH.get(str(values.get("severity")), values.get("severity"))
    if values.get("kind") == "manual":
        return out  # a person's own words
    incident = await _incident(redis, str(values.get("incident") or ""))
    title = zh_title(incident) if incident else ""
    if not title and values.get("kind") in KIND_ZH and values.get("subject"):
        title = f"{KIND_ZH[values['kind']]}：{values['subject']}"
    if title:
        out["title"] = title
    return out


async def _incident(redis: aioredis.Redis, incident_id: str) -> dict[str, Any] | None:
    if not incident_id or incident_id == "DRILL":
        return None
    try:
        return (await IncidentStore(redis).get(incident_id)).to_dict()
    except IncidentError:
        return None
    except Exception:  # the message goes out with the run's title rather than not at all
        logger.exception("incident %s unreadable for its notification", incident_id)
        return None
