"""`cart-agent check-config`, and the operational checks the models cannot make: data_dir
writable (or creatable), the files the config names there and readable, lights wired to
compartments that exist, the speaker's programs installed (a warning)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from agent.config import AgentConfig, config_path, load

EXIT_OK, EXIT_USAGE = 0, 2


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


def check_lights(cfg: AgentConfig) -> list[str]:
    """A light wired to a compartment the locker does not list is a typo, not a light."""
    ids = {c.id for c in cfg.locker.compartments}
    return [f"light.lines.{comp}: no compartment {comp} in locker.compartments"
            for comp in cfg.light.lines if comp not in ids]


def sound_warnings(cfg: AgentConfig) -> list[str]:
    """Programs the speaker needs. Only warnings: without them the cart still serves, and
    reports the speaker failing (a missing program must not keep the daemon from starting)."""
    a = cfg.audio
    wanted = []
    if a.kind != "none" and a.languages:
        wanted.append(("espeak-ng", "espeak-ng"))
    if a.kind == "alsa":
        wanted.append(("aplay", "alsa-utils"))
    return [f"warning: audio: {program} is not installed (Debian package {package}); the "
            "speaker will be reported failing" for program, package in wanted
            if shutil.which(program) is None]


def check_config(path: str | None) -> int:
    cfg = load(config_path(path))
    problems = check_data_dir(cfg) + check_files(cfg) + check_lights(cfg)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    for line in sound_warnings(cfg):
        print(line, file=sys.stderr)
    sizes = {s: sum(1 for c in cfg.locker.compartments if c.size == s) for s in "SML"}
    summary = {
        "cart_id": cfg.cart_id,
        "data_dir": cfg.data_dir,
        "mqtt": f"{cfg.mqtt.host}:{cfg.mqtt.port} prefix {cfg.mqtt.topic_prefix}"
                f"{' tls' if cfg.mqtt.tls else ''}" if cfg.mqtt.enabled else "disabled",
        "scanner": f"{cfg.scanner.kind} {cfg.scanner.port if cfg.scanner.kind == 'serial' else ''}",
        "printer": f"{cfg.printer.kind}",
        "locker": f"{cfg.locker.protocol} on {cfg.locker.port}, "
                  f"{len(cfg.locker.compartments)} compartments "
                  f"(S {sizes['S']}, M {sizes['M']}, L {sizes['L']})",
        "token keys": ", ".join(cfg.security.token_keys) or "NONE (no token will verify)",
        "fleet keys": ", ".join(cfg.security.fleet_keys) or "none (control unsigned)",
        "root keys": ", ".join(cfg.security.root_keys) or "none (trust anchors, endpoint and "
                     "paths not pushable)",
        "backups": f"every {cfg.backup.interval_s} s to {cfg.backup_dir}, keep "
                   f"{cfg.backup.keep}",
        "ticket services": ", ".join(cfg.ticket_services),
        "audio": cfg.audio.kind if cfg.audio.kind == "none" else
                 f"{cfg.audio.kind}, speaks {', '.join(cfg.audio.languages) or 'nothing'}"
                 f"{', quiet ' + cfg.audio.quiet_hours if cfg.audio.quiet_hours else ''}",
        "light": cfg.light.kind,
    }
    print("config OK (DEMO: trusts the published demo keys)" if cfg.demo else "config OK")
    for key, value in summary.items():
        print(f"  {key:16} {value}")
    return EXIT_OK
