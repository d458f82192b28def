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

from agent import config_rules as rules
from agent.config_cues import AudioConfig, LightConfig
from agent.config_rules import KEY_MAPS, CrossFieldError
from agent.contract import CART_ID_PATTERN, KEY_ID_PATTERN

DEFAULT_PATH = "/etc/cart-agent/agent.toml"

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
    def _rules(self) -> MqttConfig:
        rules.check("mqtt", self.model_dump())
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
    def _rules(self) -> PrinterConfig:
        rules.check("printer", self.model_dump())
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
    def _rules(self) -> LockerConfig:
        rules.check("locker", self.model_dump())
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


class SecurityConfig(Strict):
    token_keys: KeyMap = {}
    fleet_keys: KeyMap = {}
    # Offline-held keys whose one job is the cart's trust anchors: a pushed change to
    # security.*, the broker endpoint and credentials, file paths or listen addresses must be
    # signed by one of them (a fleet key is not enough; with none, those are not pushable).
    root_keys: KeyMap = {}
    # Release keys: their one job is signing software releases (agent/update/).
    release_keys: KeyMap = {}
    clock_skew_s: Annotated[int, Field(ge=0, le=3600)] = 120
    max_token_bytes: Annotated[int, Field(ge=256, le=8192)] = 2048
    revoked_jtis: Annotated[
        list[Annotated[str, Field(max_length=128)]], Field(max_length=10_000)
    ] = []
    attendant_pin_hash: Annotated[str, Field(max_length=512, repr=False)] = ""

    @field_validator("token_keys", "fleet_keys", "root_keys", "release_keys")
    @classmethod
    def _keys_decode(cls, keys: dict[str, str]) -> dict[str, str]:
        for kid, value in keys.items():
            try:
                _check_key(value)
            except ValueError as exc:
                raise ValueError(f"key {kid!r}: {exc}") from None
        return keys

    @model_validator(mode="after")
    def _rules(self) -> SecurityConfig:
        rules.check("security", self.model_dump())
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
    # Seconds an answer stays up (no other scan, no tap): a refusal read twice by the elderly.
    answer_s: Annotated[int, Field(ge=5, le=600)] = 20


class BackupConfig(Strict):
    # Empty: data_dir/backups. Better on another device (an SD card, a USB stick) when the
    # cart has one: a dead disk then takes the database but not its backups.
    dir: Annotated[str, Field(max_length=4096)] = ""
    interval_s: Annotated[int, Field(ge=60, le=86_400)] = 900
    keep: Annotated[int, Field(ge=1, le=100)] = 3


class ClockConfig(Strict):
    # How far the wall clock may be from the trusted clock's evidence before it is not used
    # (behind) or reported (ahead of the server's time).
    max_skew_s: Annotated[int, Field(ge=5, le=86_400)] = 120


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
    audio: AudioConfig = AudioConfig()
    light: LightConfig = LightConfig()
    clock: ClockConfig = ClockConfig()

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
    """One line per field error, key path first. A broken rule between fields is left out:
    `rule_problems` reports those, under their own keys, whether or not the fields passed."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        if isinstance(err.get("ctx", {}).get("error"), CrossFieldError):
            continue
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{_key_path(tuple(err['loc']))}: {msg}")
    return lines


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.default for name, f in model.model_fields.items() if not f.is_required()}


def rule_problems(document: dict[str, Any]) -> list[str]:
    """The rules between fields (agent/config_rules.py), on the document as written with the
    defaults under it, so they are reported together with the field errors."""
    models: dict[str, type[BaseModel]] = {"mqtt": MqttConfig, "printer": PrinterConfig,
                                          "locker": LockerConfig, "security": SecurityConfig}
    lines = []
    for table, check in rules.TABLES.items():
        written = document.get(table, {})
        if not isinstance(written, dict):
            continue
        values = {**_defaults(models[table]), **written}
        lines += [f"{table}.{key}: {why}" for key, why in check(values)]
    return lines


def demo_key_problems(document: dict[str, Any]) -> list[str]:
    if document.get("demo") is True:
        return []
    security = document.get("security")
    if not isinstance(security, dict):
        return []
    return [f"security.{name}.{kid}: is the published {DEMO_PUBLIC_KEYS[value.strip()]} key "
            "(its private key is in config/demo-keys/ for anyone to read); only a config "
            "that says demo = true may trust it"
            for name in KEY_MAPS if isinstance(security.get(name), dict)
            for kid, value in security[name].items()
            if isinstance(value, str) and value.strip() in DEMO_PUBLIC_KEYS]


def validate(document: dict[str, Any]) -> AgentConfig:
    """The config, or ConfigError naming every problem found, in one pass: field errors, the
    rules between fields and the demo keys together."""
    cfg: AgentConfig | None = None
    problems: list[str] = []
    try:
        cfg = AgentConfig.model_validate(document)
    except ValidationError as exc:
        problems = problems_from(exc)
    problems += rule_problems(document) + demo_key_problems(document)
    if problems or cfg is None:
        raise ConfigError(list(dict.fromkeys(problems)) or ["(top level): not a valid config"])
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


def mqtt_password(cfg: MqttConfig) -> str | None:
    if cfg.password_file:
        try:
            return Path(cfg.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"mqtt.password_file: {exc.strerror}"]) from None
    return cfg.password or None
