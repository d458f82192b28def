"""The cart's configuration: typed models, loading, overlaying pushed documents, error reports.

Every field is bounded and unknown keys are rejected, so a typo in a pushed config is an error
with the key's path rather than a silently ignored setting. The same models validate the TOML
file and the partial documents the fleet pushes over MQTT (laid over the file, then validated
whole).
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PATH = "/etc/cart-agent/agent.toml"
CART_ID_PATTERN = r"^[a-z0-9-]{1,32}$"
KEY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

Seconds = Annotated[float, Field(gt=0, le=86_400)]
Port = Annotated[int, Field(ge=1, le=65_535)]
Baud = Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(Strict):
    enabled: bool = True
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Port = 1883
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}$")] = "carts"
    username: Annotated[str, Field(max_length=128)] = ""
    password: Annotated[str, Field(max_length=256, repr=False)] = ""
    password_file: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    batch_max_count: Annotated[int, Field(ge=1, le=1000)] = 200
    batch_max_bytes: Annotated[int, Field(ge=1024, le=262_144)] = 65_536
    max_inflight_batches: Annotated[int, Field(ge=1, le=64)] = 8
    ack_timeout_s: Seconds = 30.0
    telemetry_interval_s: Seconds = 60.0
    reconnect_min_s: Seconds = 1.0
    reconnect_max_s: Seconds = 300.0
    config_rollback_s: Seconds = 300.0

    @model_validator(mode="after")
    def _tls_files(self) -> MqttConfig:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together")
        if self.password and self.password_file:
            raise ValueError("give password or password_file, not both")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self


class ScannerConfig(Strict):
    kind: Literal["serial", "camera", "none"] = "serial"
    port: Annotated[str, Field(max_length=255)] = "/dev/cart-scanner"
    baudrate: Baud = 9600
    camera: int | str = 0
    decoder: Literal["zxing", "pyzbar"] = "zxing"
    repeat_window_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    idle_timeout_s: Annotated[float, Field(ge=0, le=10)] = 0.3
    max_line: Annotated[int, Field(ge=64, le=16_384)] = 4096


class PrinterConfig(Strict):
    kind: Literal["serial", "usb", "network", "file", "none"] = "serial"
    port: Annotated[str, Field(max_length=255)] | Port = "/dev/cart-printer"
    baudrate: Baud = 9600
    host: str = ""
    path: str = ""
    vendor_id: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None
    product_id: Annotated[int, Field(ge=0, le=0xFFFF)] | None = None
    width_chars: Literal[32, 42, 48] = 32
    native_qr: bool = True
    # What the printer's Chinese mode encodes; characters outside it print as an image drawn
    # with `font_path` (one font file, or a list tried in order for each character).
    charset: Literal["gb18030", "gbk"] = "gb18030"
    font_path: Annotated[str, Field(min_length=1, max_length=4096)] | Annotated[
        list[Annotated[str, Field(min_length=1, max_length=4096)]],
        Field(min_length=1, max_length=8)] = [
        "/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
        "/usr/share/fonts/truetype/hanazono/HanaMinB.ttf",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    ]

    @property
    def font_paths(self) -> tuple[str, ...]:
        return (self.font_path,) if isinstance(self.font_path, str) else tuple(self.font_path)

    @model_validator(mode="after")
    def _per_kind(self) -> PrinterConfig:
        if self.kind == "network":
            if not self.host:
                raise ValueError("kind = 'network' needs host")
            if not isinstance(self.port, int):
                raise ValueError("kind = 'network' needs a numeric port")
        if self.kind == "serial" and not isinstance(self.port, str):
            raise ValueError("kind = 'serial' needs port as a device path")
        if self.kind == "usb" and (self.vendor_id is None or self.product_id is None):
            raise ValueError("kind = 'usb' needs vendor_id and product_id")
        if self.kind == "file" and not self.path:
            raise ValueError("kind = 'file' needs path")
        return self


class CompartmentConfig(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,8}$")]
    board: Annotated[int, Field(ge=0, le=255)]
    lock: Annotated[int, Field(ge=1, le=24)]
    size: Literal["S", "M", "L"] = "M"


class LockerConfig(Strict):
    enabled: bool = True
    port: Annotated[str, Field(max_length=255)] = "/dev/cart-locker"
    protocol: Literal["bs", "kerong"] = "bs"
    baudrate: Baud = 9600
    closed_bit: Literal[0, 1] = 1
    poll_interval_s: Annotated[float, Field(ge=0.05, le=60)] = 1.0
    open_timeout_s: Annotated[float, Field(ge=0.05, le=10)] = 1.5
    status_timeout_s: Annotated[float, Field(ge=0.05, le=10)] = 0.5
    door_left_open_s: Annotated[float, Field(ge=5, le=3600)] = 120.0
    compartments: Annotated[list[CompartmentConfig], Field(max_length=255)] = []

    @model_validator(mode="after")
    def _unique(self) -> LockerConfig:
        seen_ids: set[str] = set()
        seen_locks: set[tuple[int, int]] = set()
        for i, comp in enumerate(self.compartments):
            if comp.id in seen_ids:
                raise ValueError(f"compartments[{i}].id: duplicate id {comp.id!r}")
            if (comp.board, comp.lock) in seen_locks:
                raise ValueError(
                    f"compartments[{i}]: board {comp.board} lock {comp.lock} used twice"
                )
            if self.protocol == "kerong" and (comp.board > 15 or comp.lock > 16):
                raise ValueError(f"compartments[{i}]: kerong boards are 0-15, locks 1-16")
            if self.protocol == "bs" and comp.board < 1:
                raise ValueError(f"compartments[{i}].board: bs boards are 1-255")
            seen_ids.add(comp.id)
            seen_locks.add((comp.board, comp.lock))
        return self


def _check_key(value: str) -> str:
    from agent.jws import decode_public_key

    decode_public_key(value)
    return value


KeyMap = Annotated[dict[Annotated[str, Field(pattern=KEY_ID_PATTERN)], str], Field(max_length=64)]


# The public halves of the keys in config/demo-keys/, whose private halves anyone can read:
# trusted only by a config that says `demo = true` (tests/test_config.py keeps this in step).
DEMO_PUBLIC_KEYS = {
    "wMKVxolAzI9HcUmFiXODPZGrP39LI3RFtxMeqPEGuV0": "demo-issuer",
    "-6PHryDXz1eRZ8iIGT7pbHRzUL9D50WYXdYtdg-YFFw": "demo-fleet",
}
KEY_MAPS = ("token_keys", "fleet_keys", "root_keys")


class SecurityConfig(Strict):
    token_keys: KeyMap = {}
    fleet_keys: KeyMap = {}
    # Offline-held keys whose one job is the cart's trust anchors: a pushed change to
    # security.*, the broker endpoint and credentials, file paths or listen addresses must be
    # signed by one of them (a fleet key is not enough; with none, those are not pushable).
    root_keys: KeyMap = {}
    clock_skew_s: Annotated[int, Field(ge=0, le=3600)] = 120
    max_token_bytes: Annotated[int, Field(ge=256, le=8192)] = 2048
    revoked_jtis: Annotated[
        list[Annotated[str, Field(max_length=128)]], Field(max_length=10_000)
    ] = []
    attendant_pin_hash: Annotated[str, Field(max_length=512, repr=False)] = ""

    @field_validator("token_keys", "fleet_keys", "root_keys")
    @classmethod
    def _keys_decode(cls, keys: dict[str, str]) -> dict[str, str]:
        for kid, value in keys.items():
            try:
                _check_key(value)
            except ValueError as exc:
                raise ValueError(f"key {kid!r}: {exc}") from None
        return keys

    @model_validator(mode="after")
    def _one_job_per_key(self) -> SecurityConfig:
        seen: dict[str, str] = {}
        for name in KEY_MAPS:
            for kid, value in getattr(self, name).items():
                other = seen.get(value.strip())
                if other is not None and not other.startswith(name + "."):
                    raise ValueError(f"{name}.{kid}: the same key is already in {other}; "
                                     "a key has one job")
                seen.setdefault(value.strip(), f"{name}.{kid}")
        shared = set(self.fleet_keys) & set(self.root_keys)
        if shared:
            raise ValueError(f"root_keys and fleet_keys share key id(s) {sorted(shared)}: "
                             "a signature must say which of the two signed it")
        return self


class TicketService(Strict):
    zh: Annotated[str, Field(min_length=1, max_length=32)]
    en: Annotated[str, Field(min_length=1, max_length=48)]


DEFAULT_TICKET_SERVICES = {
    "gov": TicketService(zh="政务服务", en="Government services"),
    "property": TicketService(zh="物业服务", en="Property services"),
    "bills": TicketService(zh="缴费服务", en="Bill payment"),
}


class WebConfig(Strict):
    enabled: bool = True
    listen: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65_535)] = 8080  # 0: any free port (tests)
    lockout_failures: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_s: Annotated[int, Field(ge=1, le=86_400)] = 300


class BackupConfig(Strict):
    # Empty: data_dir/backups. Better on another device (an SD card, a USB stick) when the
    # cart has one: a dead disk then takes the database but not its backups.
    dir: Annotated[str, Field(max_length=4096)] = ""
    interval_s: Annotated[int, Field(ge=60, le=86_400)] = 900
    keep: Annotated[int, Field(ge=1, le=100)] = 3


class AgentConfig(Strict):
    cart_id: Annotated[str, Field(pattern=CART_ID_PATTERN)]
    data_dir: Annotated[str, Field(min_length=1, max_length=4096)] = "/var/lib/cart-agent"
    # True only for a demo or test cart: it may then trust the published demo keys.
    demo: bool = False
    timezone: str = "Asia/Shanghai"
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    deposit_timeout_s: Annotated[int, Field(ge=10, le=3600)] = 120
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: MqttConfig = MqttConfig()
    scanner: ScannerConfig = ScannerConfig()
    printer: PrinterConfig = PrinterConfig()
    locker: LockerConfig = LockerConfig()
    security: SecurityConfig = SecurityConfig()
    ticket_services: Annotated[dict[
        Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,16}$")], TicketService
    ], Field(max_length=32)] = DEFAULT_TICKET_SERVICES
    web: WebConfig = WebConfig()
    backup: BackupConfig = BackupConfig()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "cart.db"

    @property
    def backup_dir(self) -> Path:
        return Path(self.backup.dir) if self.backup.dir else Path(self.data_dir) / "backups"


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one line per problem, key path first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def problems_from(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{_key_path(tuple(err['loc']))}: {msg}")
    return lines


def demo_key_problems(cfg: AgentConfig) -> list[str]:
    if cfg.demo:
        return []
    return [f"security.{name}.{kid}: is the published {DEMO_PUBLIC_KEYS[value.strip()]} key "
            "(its private key is in config/demo-keys/ for anyone to read); only a config "
            "that says demo = true may trust it"
            for name in KEY_MAPS for kid, value in getattr(cfg.security, name).items()
            if value.strip() in DEMO_PUBLIC_KEYS]


def validate(document: dict[str, Any]) -> AgentConfig:
    try:
        cfg = AgentConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc)) from None
    problems = demo_key_problems(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def read_document(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{p}: no such file"]) from None
    except PermissionError:
        raise ConfigError([f"{p}: permission denied"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{p}: is a directory"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{p}: not UTF-8 text"]) from None


# Tables that a layer replaces whole: a key map is a set of trusted keys, and a merge could
# add keys but never take a compromised one away.
REPLACED_WHOLE = {f"security.{name}" for name in KEY_MAPS}


def overlay(base: dict[str, Any], patch: dict[str, Any], _at: str = "") -> dict[str, Any]:
    """Lay a partial document over another: tables merge key by key, anything else replaces.

    Lists replace whole (a pushed `locker.compartments` is the new list, not a merge), and so
    do the key maps under [security].
    """
    out = copy.deepcopy(base)
    for key, value in patch.items():
        path = f"{_at}.{key}" if _at else str(key)
        if (isinstance(value, dict) and isinstance(out.get(key), dict)
                and path not in REPLACED_WHOLE):
            out[key] = overlay(out[key], value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_path(explicit: str | None) -> str:
    return explicit or os.environ.get("CART_AGENT_CONFIG") or DEFAULT_PATH


def load(path: str | Path, *layers: dict[str, Any]) -> AgentConfig:
    """Read the file, lay the pushed documents over it in order, validate the whole."""
    document = read_document(path)
    for layer in layers:
        document = overlay(document, layer)
    return validate(document)


def check_data_dir(cfg: AgentConfig) -> list[str]:
    """Operational check the models cannot make: data_dir must be writable, or creatable."""
    data_dir = Path(cfg.data_dir)
    probe = data_dir
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return [f"data_dir: {probe} is not a directory"]
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == data_dir else f"cannot be created in {probe}"
        return [f"data_dir: {data_dir} {what}"]
    return []


def check_files(cfg: AgentConfig) -> list[str]:
    """Files the config names must be there and readable before the daemon relies on them."""
    wanted: list[tuple[str, str]] = []
    m = cfg.mqtt
    if m.enabled and m.password_file:
        wanted.append(("mqtt.password_file", m.password_file))
    if m.enabled and m.tls:
        wanted += [(f"mqtt.{k}", v) for k, v in (("ca_file", m.ca_file),
                                                 ("cert_file", m.cert_file),
                                                 ("key_file", m.key_file)) if v]
    problems = []
    for key, name in wanted:
        path = Path(name)
        if not path.is_file():
            problems.append(f"{key}: {name} does not exist")
        elif not os.access(path, os.R_OK):
            problems.append(f"{key}: {name} is not readable")
    return problems


def mqtt_password(cfg: MqttConfig) -> str | None:
    if cfg.password_file:
        try:
            return Path(cfg.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"mqtt.password_file: {exc.strerror}"]) from None
    return cfg.password or None
