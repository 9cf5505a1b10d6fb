"""Playbook library endpoints: what playbooks exist, with their titles in both languages.

The console offers them in its "start a playbook" picker and shows a run's
step titles in the reader's language from them (a run carries one title per
step, in the language the runner stored). The library is the playbook
runner's own (``runner.library``); without a runner it is loaded once from
``config.playbooks.library``. Both endpoints only read and need ``READ_BOARD``.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from watchfloor.api.errors import NotFound
from watchfloor.api.inputs import path_id
from watchfloor.api.state import CONFIG, RUNNER
from watchfloor.playbooks.errors import UnknownPlaybook
from watchfloor.playbooks.library import Library
from watchfloor.security.auth import requires
from watchfloor.security.roles import Permission

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

_LOADED: dict[str, Library] = {}
"""Libraries loaded from the config when the app has no runner, by directory."""


def library_of(request: web.Request) -> Library:
    """The runner's library, else the configured one (loaded once per directory)."""
    library = getattr(request.app.get(RUNNER), "library", None)
    if isinstance(library, Library):
        return library
    directory = request.app[CONFIG].playbooks.library
    key = str(directory)
    if key not in _LOADED:
        _LOADED[key] = Library.load(directory)
        logger.info("playbook library loaded without a runner count=%d", len(_LOADED[key]))
    return _LOADED[key]


def playbook_to_dict(playbook: Any) -> dict[str, Any]:
    """The JSON form of a ``playbooks.schema.Playbook``."""
    trigger = playbook.trigger
    return {
        "id": playbook.id,
        "title": {"zh": playbook.title_zh, "en": playbook.title_en},
        "description": playbook.description,
        "kinds": list(trigger.kinds),
        "rules": list(trigger.rules),
        "min_severity": trigger.min_severity,
        "manual_only": trigger.manual_only,
        "steps": [
            {"id": s.id, "title": {"zh": s.title_zh, "en": s.title_en}, "owner": s.owner}
            for s in playbook.steps
        ],
    }


@routes.get("/v1/playbooks")
@requires(Permission.READ_BOARD)
async def list_playbooks(request: web.Request) -> web.Response:
    """``{"playbooks": [playbook...]}``, by id."""
    return web.json_response({"playbooks": [playbook_to_dict(p) for p in library_of(request)]})


@routes.get("/v1/playbooks/{id}")
@requires(Permission.READ_BOARD)
async def get_playbook(request: web.Request) -> web.Response:
    """One playbook; 404 when the library has none with that id."""
    playbook_id = path_id(request, "id", max_len=128)
    try:
        playbook = library_of(request).get(playbook_id)
    except UnknownPlaybook:
        raise NotFound(f"no playbook {playbook_id!r}") from None
    return web.json_response(playbook_to_dict(playbook))
