"""Settings applied to a running monitor without a restart (SIGHUP, ``watchfloor reload``).

What reloads live: ``[[webhooks]]``, ``[playbooks]`` (``drill_target``,
``auto_start``, ``delivery_lease_s``, the ``library`` directory and its files), the
rules (``monitor.rules_file`` and its content) and who is paged for what
(``[[paging.routes]]``, ``[[paging.escalation]]``, ``paging.ack_ttl_s``: the duty
floor changes its routes mid-shift, not at the next restart). Everything else
(ports, probes, Redis, turning paging on or off, ...) is read at start: a reload
names those changes as needing a restart and leaves them alone.

A reload is all or nothing: the config, the rules and every playbook are loaded
and checked first, and the engine is rebuilt on the new rules from a snapshot of
the running one (windows, watermark and open problems kept); only when all of
that succeeded are the new settings swapped in. A refused reload keeps the old
settings and says why. Both outcomes are audited (``config.reloaded``, outcome
``ok`` or ``refused``, with what changed and who asked) and written to
``DATA_DIR/run/reload-result.json`` for ``watchfloor reload`` to show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from watchfloor.core.config import Config, ConfigError, redacted
from watchfloor.monitor.rules import RulesError
from watchfloor.monitor.rules import load_rules as load_rules_file
from watchfloor.playbooks.actions.notify import targets_from_config
from watchfloor.playbooks.errors import PlaybookInvalid
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.paging_routes import PagingConfigError, parse_routes
from watchfloor.playbooks.paging_setup import escalation_levels, pager_wanted
from watchfloor.run_files import run_dir

logger = logging.getLogger(__name__)

REQUEST_FILE: Final = "reload-request.json"
RESULT_FILE: Final = "reload-result.json"
REQUEST_FRESH_S: Final = 60.0
LIVE_PAGING: Final = ("paging.routes", "paging.escalation", "paging.ack_ttl_s")
"""The paging settings a running pager takes (the pager itself starts at start only)."""
"""A request file older than this did not ask for the current SIGHUP."""
WEBHOOK_KINDS: Final = ("json", "dingtalk", "wecom", "feishu", "slack")
LIVE_SETTINGS: Final = ("webhooks", "playbooks", "monitor.rules_file", *LIVE_PAGING)


class ReloadRefused(Exception):
    """The new settings are not valid; ``errors`` name the file and key of each problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Settings:
    """What a reload swaps in, loaded and checked."""

    config: Config
    rules: Any
    library: Library


@dataclass
class ReloadResult:
    ok: bool
    by: str
    request: str = ""
    errors: list[str] = field(default_factory=list)
    changed: dict[str, Any] = field(default_factory=dict)
    needs_restart: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)


def load_settings(load_config: Callable[[], Config]) -> Settings:
    """Config, rules and playbook library as a fresh start would load them, or refused."""
    try:
        config = load_config()
    except ConfigError as exc:
        raise ReloadRefused([f"config: {exc}"]) from None
    errors = _webhook_errors(config)
    try:
        parse_routes(config.paging.routes)
    except PagingConfigError as exc:
        errors.append(str(exc))
    try:
        rules = load_rules_file(config.monitor.rules_file)
    except RulesError as exc:
        errors += [f"rules: {e}" for e in exc.errors]
        rules = None
    except OSError as exc:
        errors.append(f"monitor.rules_file: {exc.strerror or exc}: {config.monitor.rules_file}")
        rules = None
    extra = config.playbooks.library
    if extra and not Path(extra).is_dir():
        errors.append(f"playbooks.library: {extra} is not a directory")
    try:
        library = Library.load(extra, strict=True)
    except PlaybookInvalid as exc:
        errors += [f"playbooks: {e}" for e in exc.errors]
        library = Library([])
    if errors:
        raise ReloadRefused(errors)
    return Settings(config, rules, library)


def _webhook_errors(config: Config) -> list[str]:
    errors = []
    for i, hook in enumerate(config.webhooks):
        if hook.kind not in WEBHOOK_KINDS:
            errors.append(f"webhooks[{i}].kind: must be one of {', '.join(WEBHOOK_KINDS)}")
        if not hook.url.value.startswith(("http://", "https://")):
            errors.append(f"webhooks[{i}].url: must be an http:// or https:// URL")
    return errors


def changes(old: Settings, new: Settings) -> dict[str, Any]:
    """What differs, by name only (webhook URLs and secrets are never shown)."""
    out: dict[str, Any] = {}
    hooks = _by_name_diff(
        {h.name: h for h in old.config.webhooks}, {h.name: h for h in new.config.webhooks}
    )
    if hooks:
        out["webhooks"] = hooks
    for name in ("drill_target", "auto_start", "library", "delivery_lease_s"):
        if getattr(old.config.playbooks, name) != getattr(new.config.playbooks, name):
            out.setdefault("playbook_settings", []).append(f"playbooks.{name}")
    paging = [
        path
        for path in LIVE_PAGING
        if getattr(old.config.paging, path.partition(".")[2])
        != getattr(new.config.paging, path.partition(".")[2])
    ]
    if paging:
        out["paging"] = paging
    books = _by_name_diff(old.library.playbooks, new.library.playbooks)
    if books:
        out["playbooks"] = books
    rules = sorted(_changed_keys(_document(old.rules), _document(new.rules)))
    if rules:
        out["rules"] = rules
    return out


def needs_restart(old: Config, new: Config) -> list[str]:
    """Changed settings that only a restart applies (``collector.port``, ``probes``...)."""
    before, after = redacted(old), redacted(new)
    for name in ("webhooks", "playbooks"):
        before.pop(name, None)
        after.pop(name, None)
    for side in (before, after):
        side.get("monitor", {}).pop("rules_file", None)
        for path in LIVE_PAGING:
            side.get("paging", {}).pop(path.partition(".")[2], None)
    return sorted(_changed_keys(before, after))


def _by_name_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[str]]:
    diff = {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
    }
    return {k: v for k, v in diff.items() if v}


def _document(rules: Any) -> Mapping[str, Any]:
    return getattr(rules, "document", None) or {}


def _changed_keys(old: Any, new: Any, prefix: str = "") -> set[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: set[str] = set()
        for key in set(old) | set(new):
            path = f"{prefix}.{key}" if prefix else str(key)
            found |= _changed_keys(old.get(key), new.get(key), path)
        return found
    return set() if old == new else {prefix or "(all)"}


class SettingsReloader:
    """Applies new settings to a running :class:`~watchfloor.monitor_process.MonitorProcess`."""

    def __init__(self, process: Any, load_config: Callable[[], Config]) -> None:
        self.process = process
        self.load_config = load_config
        rules = process.service.rules or load_rules_file(process.config.monitor.rules_file)
        process.service.rules = rules  # what the running engine was built from
        self.current = Settings(process.config, rules, process.runner.library)
        self.requested = asyncio.Event()

    def request(self) -> None:
        """Called from the SIGHUP handler: the reload runs in :meth:`run`'s task."""
        self.requested.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Reload each time it is requested, until ``stop``."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                asking = asyncio.ensure_future(self.requested.wait())
                await asyncio.wait({stopping, asking}, return_when=asyncio.FIRST_COMPLETED)
                asking.cancel()
                if self.requested.is_set() and not stop.is_set():
                    self.requested.clear()
                    try:
                        await self.reload()
                    except Exception:  # task boundary: the next SIGHUP tries again
                        logger.exception("reload failed; the running settings are kept")
        finally:
            stopping.cancel()

    async def reload(self) -> ReloadResult:
        """Load, check, swap; audit and write the result. Never raises for bad settings."""
        request = _read_request(run_dir(self.current.config))
        by = str(request.get("by") or "signal:SIGHUP")
        try:
            result = self._apply(by, str(request.get("id") or ""))
        except ReloadRefused as exc:
            result = ReloadResult(False, by, str(request.get("id") or ""), errors=exc.errors)
            logger.error("reload refused; the running settings are kept: %s", exc)
        await self._audit(result)
        _write_result(run_dir(self.current.config), result)
        return result

    def _apply(self, by: str, request_id: str) -> ReloadResult:
        new = load_settings(self.load_config)
        changed = changes(self.current, new)
        restart = needs_restart(self.current.config, new.config)
        if "rules" in changed:
            try:
                self.process.service.swap_rules(new.rules)
            except Exception as exc:  # the running windows cannot take the new detectors
                raise ReloadRefused([f"rules: the running engine cannot take them: {exc}"]) from exc
        runner = self.process.runner
        runner.library = new.library
        runner.auto_start = new.config.playbooks.auto_start
        notifier = runner.actions.notifier
        notifier.targets = targets_from_config(new.config.webhooks)
        notifier.drill_target = new.config.playbooks.drill_target
        runner.timers.delivery_lease_s = new.config.playbooks.delivery_lease_s
        restart += self._apply_paging(new.config, changed.get("paging", []))
        self.current = new
        logger.info("settings reloaded by=%s changed=%s needs_restart=%s", by, changed, restart)
        return ReloadResult(True, by, request_id, changed=changed, needs_restart=restart)

    def _apply_paging(self, config: Config, changed: list[str]) -> list[str]:
        """Routes, escalation levels and the ack link's lifetime into the running pager;
        what only a restart can apply (no pager running, or paging switched on or off)."""
        pager = getattr(self.process, "pager", None)
        if pager is None:
            wanted = pager_wanted(config)
            return [f"{p} (no pager is running: paging starts at start)" for p in changed] + (
                ["paging (a pager is wanted now: restart to start it)"] if wanted else []
            )
        routes = parse_routes(config.paging.routes)
        pager.set_policy(routes, escalation_levels(config), config.paging.ack_ttl_s)
        return []

    async def _audit(self, result: ReloadResult) -> None:
        audit = self.process.audit
        if audit is None:
            return
        details = {"changed": result.changed, "needs_restart": result.needs_restart}
        if result.errors:
            details["errors"] = result.errors
        try:
            await audit.append(
                result.by,
                "admin",  # who can signal the stack's processes administers the machine
                "config.reloaded",
                "settings",
                "ok" if result.ok else "refused",
                details,
            )
        except Exception:  # the reload happened: a failed record is logged, not undone
            logger.exception("config.reloaded not audited")


def _read_request(directory: Path) -> dict[str, Any]:
    """What ``watchfloor reload`` wrote before its SIGHUP (who asked), when fresh."""
    try:
        data = json.loads((directory / REQUEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or time.time() - float(data.get("at", 0)) > REQUEST_FRESH_S:
        return {}
    return data


def _write_result(directory: Path, result: ReloadResult) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = directory / (RESULT_FILE + ".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(result)), encoding="utf-8")
    temporary.replace(directory / RESULT_FILE)  # atomic: the command never reads half a file
