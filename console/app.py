"""The console application: wires screens, bindings, the live feed and the one error funnel.

Everything the screens show lives in :class:`~console.state.BoardState`; the
app applies what :class:`~console.client.LiveFeed` posts and tells the
screens which rows changed. Commands go through :meth:`ConsoleApp.act`, and
every failure of a command or a worker ends in :meth:`ConsoleApp.report_error`.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from watchfloor.console import format as fmt
from watchfloor.console.actions import commands, done_values
from watchfloor.console.client import ApiClient, ApiError, LiveFeed
from watchfloor.console.duty import ROSTER_REFRESH_S, duty_line
from watchfloor.console.i18n import Translator
from watchfloor.console.messages import (
    ChangesReceived,
    IncidentOpened,
    LiveConnected,
    LiveDisconnected,
    PingReceived,
    RunOpened,
    SnapshotReceived,
)
from watchfloor.console.palette import palette_commands
from watchfloor.console.permissions import APP_ACTIONS, Allowed
from watchfloor.console.screens.audit import AuditScreen
from watchfloor.console.screens.base import ConsoleScreen, translate_bindings
from watchfloor.console.screens.board import BoardScreen
from watchfloor.console.screens.forms import ManualIncident, ManualIncidentModal
from watchfloor.console.screens.handover import HandoverScreen
from watchfloor.console.screens.help import HelpScreen
from watchfloor.console.screens.history import HistoryScreen
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.screens.silences import SilencesScreen
from watchfloor.console.state import BoardState, Dirty
from watchfloor.console.widgets.registry import TileRegistry

logger = logging.getLogger(__name__)
STYLES = Path(__file__).parent / "styles"


class ConsoleApp(App[None]):
    CSS_PATH = str(STYLES / "console.tcss")
    TITLE = "Watchfloor"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "key.quit"),
        Binding("question_mark", "help", "key.help"),
        Binding("b", "board", "key.board", show=False),
        Binding("u", "show_audit", "key.audit"),
        Binding("m", "open_incident", "key.manual"),
        Binding("h", "show_handover", "key.handover"),
        Binding("l", "show_silences", "key.silences"),
        Binding("i", "show_history", "key.history"),
        # Declared here so that its footer label is translated (Textual's own says "palette").
        Binding("ctrl+p", "command_palette", "key.palette", show=False, priority=True),
    ]

    def __init__(
        self,
        url: str | None,
        token: str = "",
        *,
        lang: str = "en",
        stale_after_s: float = 30.0,
        live: bool = True,
        tiles: TileRegistry | None = None,
    ) -> None:
        super().__init__()
        self.tiles = tiles
        """The board's tiles (``None``: the product's ``BOARD_TILES``)."""
        self.tr = Translator(lang)
        self.board = BoardState(stale_after_s)
        self.api = ApiClient(url, token) if url else None
        self.feed = LiveFeed(url, token, self.post_message) if url and live else None
        self.me: dict[str, Any] = {}
        self.duty = ""
        """Who is on duty now, for the header (``GET /v1/roster``, refreshed each minute)."""
        self.allowed = Allowed()
        """What the token may do overall (``GET /v1/permissions``); screens ask for more."""
        self.playbooks: dict[str, dict[str, Any]] = {}
        """The playbook library by id (``GET /v1/playbooks``): picker, titles in both languages."""
        self.link: tuple[str, str] = ("connecting", self.tr("conn.connecting"))
        translate_bindings(self, self.tr)

    def on_mount(self) -> None:
        self.push_screen(BoardScreen(self.tiles))
        if self.api is not None:
            self.run_worker(self._load_whoami(), group="api", exit_on_error=False)
        if self.feed is not None:
            self.run_worker(self.feed.run(), group="live", exit_on_error=False)
        self.set_timer(1.0, self._tick)
        self.set_interval(ROSTER_REFRESH_S, self._refresh_roster)

    def _refresh_roster(self) -> None:
        # Shifts change on the hour: a minute's delay in the header is fine, a poll per tick is not.
        if self.api is not None and self.me:
            self.run_worker(self._load_roster(), group="api", exit_on_error=False)

    async def on_unmount(self) -> None:
        if self.api is not None:
            await self.api.aclose()

    async def _load_whoami(self) -> None:
        me = await self.api.whoami()  # type: ignore[union-attr]
        self.allowed = Allowed.from_answer(await self.api.permissions())  # type: ignore[union-attr]
        self.me = me  # last: "me" known means its permissions are known too
        self.refresh_bindings()
        self._each_screen(lambda s: s.sync_status())
        self._updated(Dirty(reset=True))  # texts that depend on the role ("press p to...")
        await self._load_playbooks()
        await self._load_roster()

    async def _load_roster(self) -> None:
        try:
            answer = await self.api.roster()  # type: ignore[union-attr]
        except ApiError as exc:  # an older API, or a token that does not read the board
            logger.warning("roster not available: %s", exc.message)
            return
        self.duty = duty_line(answer, self.tr)
        self._each_screen(lambda s: s.sync_status())

    async def _load_playbooks(self) -> None:
        try:
            found = await self.api.playbooks()  # type: ignore[union-attr]
        except ApiError as exc:  # an older API without the library: ids and stored titles
            logger.warning("playbook library not available: %s", exc.message)
            return
        self.playbooks = {str(p.get("id")): p for p in found}
        self._updated(Dirty(reset=True))  # step titles in the chosen language

    def playbook_title(self, run: dict[str, Any]) -> str:
        """A run's playbook title in the interface's language."""
        playbook = self.playbooks.get(str(run.get("playbook")))
        title = (playbook or {}).get("title") or run.get("title") or run.get("playbook")
        return fmt.localized(title, self.tr.lang)

    def step_title(self, run: dict[str, Any] | None, step: dict[str, Any]) -> str:
        """A step's title in the interface's language (the run stores one language only)."""
        playbook = self.playbooks.get(str((run or {}).get("playbook")))
        for known in (playbook or {}).get("steps") or ():
            if known.get("id") == step.get("id") and known.get("title"):
                return fmt.localized(known["title"], self.tr.lang)
        return fmt.localized(step.get("title") or step.get("id"), self.tr.lang)

    # --- what the screens ask -------------------------------------------------------

    def may(self, action: str) -> bool:
        """May the app's own ``action`` (``show_audit``, ``open_incident``) be offered?"""
        return self.allowed.may(action)

    def user_text(self) -> str:
        if not self.me:
            return ""
        role = str(self.me.get("role"))
        shown = self.tr(f"role.{role}") if self.tr.lang == "zh" else role
        return f"{self.me.get('name')} · {shown}"

    def duty_text(self) -> str:
        return self.duty

    def link_text(self) -> tuple[str, str]:
        return self.link

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.may(action) if action in APP_ACTIONS else True

    # --- the live feed --------------------------------------------------------------------

    def _each_screen(self, call: Any) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ConsoleScreen):
                call(screen)

    def _updated(self, dirty: Dirty) -> None:
        self._each_screen(lambda s: s.board_updated(dirty))

    def on_live_connected(self, _: LiveConnected) -> None:
        if self.api is not None and not self.me:  # the API was down when we started
            self.run_worker(self._load_whoami(), group="api", exit_on_error=False)
        elif self.api is not None and not self.playbooks:  # or its library was not readable
            self.run_worker(self._load_playbooks(), group="api", exit_on_error=False)
        self.board.connected = True
        self.board.touch(time.time())
        self._set_link("live", self.tr("conn.connected"))

    def on_live_disconnected(self, message: LiveDisconnected) -> None:
        self.board.connected = False
        key = "conn.refused" if message.fatal else "conn.disconnected"
        self._set_link("down", self.tr(key, s=round(message.retry_in), reason=message.reason))
        self._tick(rearm=False)

    def on_snapshot_received(self, message: SnapshotReceived) -> None:
        self._updated(self.board.apply_snapshot(message.snapshot, time.time()))
        # Thousands of rows and Textual's own objects live as long as the app: keep them
        # out of the collector's full passes, which otherwise stall a frame by 100+ ms.
        self.call_after_refresh(gc.freeze)

    def on_changes_received(self, message: ChangesReceived) -> None:
        self._updated(self.board.apply_changes(message.changes, time.time()))

    def on_ping_received(self, message: PingReceived) -> None:
        self.board.touch(time.time(), message.at)

    def _set_link(self, state: str, text: str) -> None:
        self.link = (state, text)
        self._each_screen(lambda s: s.sync_status())

    def _tick(self, rearm: bool = True) -> None:
        # Re-armed after the tick finished (Dolphie): a slow tick never piles up.
        try:
            screen = self.screen if self.screen_stack else None
            if isinstance(screen, ConsoleScreen) and screen.alive:
                screen.tick(time.time())
        finally:
            if rearm:
                self.set_timer(1.0, self._tick)

    # --- navigation -----------------------------------------------------------------------

    def on_incident_opened(self, message: IncidentOpened) -> None:
        self.push_screen(IncidentScreen(message.incident_id))

    def on_run_opened(self, message: RunOpened) -> None:
        self.push_screen(IncidentScreen("", run_id=message.run_id))

    async def action_pop_screen(self) -> None:
        """Back (Escape): never past the board, which would leave a blank screen."""
        if len(self.screen_stack) > 2 or not isinstance(self.screen, BoardScreen):
            await super().action_pop_screen()

    def action_board(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_show_audit(self) -> None:
        if not isinstance(self.screen, AuditScreen):
            self.push_screen(AuditScreen())

    def action_show_silences(self) -> None:
        if not isinstance(self.screen, SilencesScreen):
            self.push_screen(SilencesScreen())

    def action_command_palette(self) -> None:
        # Textual's own palette, with its search prompt in the interface's language.
        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(CommandPalette(placeholder=self.tr("palette.search"),
                                            id="--command-palette"))  # fmt: skip

    def action_show_history(self) -> None:
        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen())

    def action_show_handover(self) -> None:
        if not isinstance(self.screen, HandoverScreen):
            self.push_screen(HandoverScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_open_incident(self) -> None:
        """Open an incident by hand (``m``), then show it."""
        if not self.may("open_incident"):
            return

        def done(answer: ManualIncident | None) -> None:
            if answer is not None:
                self.act(
                    "open_incident",
                    answer.title,
                    answer.severity,
                    answer.subject,
                    then=lambda data: self.post_message(IncidentOpened(str(data["id"]))),
                )

        self.push_screen(ManualIncidentModal(self.tr), done)

    # --- commands and fetches ---------------------------------------------------------------

    def act(
        self, name: str, *args: Any, then: Callable[[dict], object] | None = None, **kwargs: Any
    ) -> None:
        """Send a command to the API; on success apply its answer, say so, call ``then``."""
        if self.api is None:
            return
        command = commands(self.api)[name]

        async def call() -> None:
            result = await command.call(*args, **kwargs)
            data = result.get(command.kind, result)
            if command.kind in ("incident", "run") and isinstance(data, dict) and data.get("id"):
                self._updated(
                    self.board.apply_changes(
                        [{"kind": command.kind, "op": name, "data": data}], time.time()
                    )
                )
            new = data.get("id") if isinstance(data, dict) else None
            names = self._done_names(name, args, data, command.kind)
            self.notify(self.tr(command.done, new=new, **names))
            if then is not None and isinstance(data, dict) and data.get("id"):
                then(data)

        self.run_worker(call(), group="api", exit_on_error=False)

    def _done_names(self, name: str, args: tuple[Any, ...], data: Any, kind: str) -> dict[str, Any]:
        """The toast's values: a step or playbook by its title in the language, not its id."""
        values = done_values(name, args)
        run = data if isinstance(data, dict) and kind == "run" else None
        if run is not None and "step" in values:
            values["step"] = self.step_title(run, {"id": values["step"]})
        if run is not None and "pb" in values:
            values["pb"] = self.playbook_title(run)
        return values

    def fetch(self, call: Callable[[ApiClient], Awaitable[Any]], deliver: Any) -> None:
        """Run an API read in a worker and hand the answer to ``deliver``."""
        api = self.api
        if api is None:
            return

        async def run() -> None:
            deliver(await call(api))

        self.run_worker(run(), group="api", exit_on_error=False)

    # --- the one error funnel ------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error)

    def report_error(self, error: BaseException) -> None:
        if isinstance(error, ApiError):
            key = "error.unreachable" if error.unreachable else "error.api"
            logger.warning("api error status=%s message=%s", error.status, error.message)
            self.notify(
                self.tr(key, error=error.message), severity="error", timeout=6, markup=False
            )
            return
        logger.error("console error", exc_info=error)
        self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=8, markup=False)

    # --- the command palette ---------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from palette_commands(self, screen)
