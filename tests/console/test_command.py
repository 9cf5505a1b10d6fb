"""`watchfloor console`: where the token comes from, and where the log goes."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from watchfloor.cli import build_parser
from watchfloor.commands.console import log_to_file, read_token
from watchfloor.errors import CommandError


def args_of(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["console", *argv])


def test_the_token_comes_from_the_flag_then_the_file_then_the_environment(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    env = {"WATCHFLOOR_TOKEN": "from-env"}
    assert read_token(args_of("--token", "from-flag", "--token-file", str(token_file)), env) == (
        "from-flag"
    )
    assert read_token(args_of("--token-file", str(token_file)), env) == "from-file"
    assert read_token(args_of(), env) == "from-env"


@pytest.mark.parametrize(
    ("argv", "message"),
    [((), "no token"), (("--token-file", "/nonexistent/token"), "cannot read the token file")],
)
def test_a_missing_token_is_a_one_line_user_error(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        read_token(args_of(*argv), {})


def test_the_language_is_checked_by_the_parser() -> None:
    assert args_of("--lang", "zh").lang == "zh"
    with pytest.raises(SystemExit):
        args_of("--lang", "fr")


def test_the_console_logs_to_a_file_in_the_data_dir(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        path = log_to_file(str(tmp_path))
        logging.getLogger("console.test").warning("written to the file")
        for handler in root.handlers:
            handler.flush()
        assert path == tmp_path / "logs" / "console.log"
        assert "written to the file" in path.read_text()
        assert not any(isinstance(h, logging.StreamHandler) and not isinstance(
            h, logging.FileHandler) for h in root.handlers)  # fmt: skip
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_the_console_shows_times_in_the_site_s_zone_not_the_machine_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from watchfloor.commands.console import use_site_timezone
    from watchfloor.core.config import Config, SiteConfig

    monkeypatch.setenv("TZ", "UTC")  # the machine's zone; monkeypatch restores it
    time.tzset()
    try:
        use_site_timezone(Config(site=SiteConfig(timezone="Asia/Shanghai")))
        assert time.strftime("%H:%M", time.localtime(0)) == "08:00"  # 1970-01-01 00:00 UTC
    finally:
        monkeypatch.undo()
        time.tzset()
