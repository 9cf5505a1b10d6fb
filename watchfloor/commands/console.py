"""`watchfloor console`: open the duty console on a running monitor API.

The token comes from ``--token``, ``--token-file`` or ``WATCHFLOOR_TOKEN``
(in that order). The TUI never prints: it logs to ``DATA_DIR/logs/console.log``
(or a file in the temp dir when the data dir cannot be written).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from watchfloor import logs
from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core.config import Config
from watchfloor.errors import CommandError
from watchfloor.run_files import stack_addresses

DEFAULT_URL = "http://127.0.0.1:8471"


def register(sub: Any) -> None:
    parser = sub.add_parser("console", help="open the duty console")
    add_config_options(parser)
    parser.add_argument("--url", default=None, help=f"monitor API URL (default {DEFAULT_URL})")
    parser.add_argument("--token", help="API token (else --token-file or WATCHFLOOR_TOKEN)")
    parser.add_argument("--token-file", help="file holding the API token")
    parser.add_argument("--lang", choices=("en", "zh"), help="interface language")
    parser.set_defaults(func=run)


def read_token(args: argparse.Namespace, env: dict[str, str]) -> str:
    """The token from the flag, the file or the environment; a user error when none."""
    if args.token:
        return str(args.token).strip()
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CommandError(f"cannot read the token file: {exc}") from exc
    token = env.get("WATCHFLOOR_TOKEN", "").strip()
    if not token:
        raise CommandError("no token: give --token, --token-file or set WATCHFLOOR_TOKEN")
    return token


def log_to_file(data_dir: str) -> Path:
    """Send every log record to a file (the TUI owns the terminal)."""
    path = Path(data_dir) / "logs" / "console.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        path = Path(tempfile.gettempdir()) / f"watchfloor-console-{os.getuid()}.log"
    logs.log_to_file(path, level=min(logging.getLogger().level or logging.WARNING, logging.INFO))
    return path


def use_site_timezone(config: Config) -> None:
    """Show every time in the site's zone (``[site] timezone``), never the machine's UTC.

    The console formats times with ``time.localtime``; setting this process's zone once
    covers every screen (board, incident timeline, audit, history) at the root.
    """
    os.environ["TZ"] = config.site.timezone
    time.tzset()


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    use_site_timezone(config)
    token = read_token(args, dict(os.environ))
    host, port = stack_addresses(config).get("api", (config.api.host, config.api.port))
    url = args.url or f"http://{host}:{port}"  # beside a running `up`: its API
    log_to_file(config.data_dir)
    from watchfloor.console.app import ConsoleApp

    ConsoleApp(url, token, lang=args.lang or config.console.lang,
               stale_after_s=config.console.stale_after_s).run()  # fmt: skip
    return 0
