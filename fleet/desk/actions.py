"""Acting from the desk: a config push or a command, previewed, confirmed, recorded.

The checks, the signing and the publishing are fleet.operations's (the same code as
`cart-fleet push-config` and `cart-fleet command`); this module adds the preview (the diff
against what the broker retains now) and the record of who did what, whatever the outcome.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.contract import SIGNATURES, CommandError, check_args
from fleet.client import BrokerOptions, FleetError
from fleet.desk.db import Database
from fleet.keys import BadInput
from fleet.operations import (
    Signer,
    check_push,
    command_args,
    command_document,
    ensure_not_offline,
    publish_command,
    push_config,
    read_config_text,
    retained_desired,
)

MAX_DOCUMENT = 64 * 1024


def flatten(doc: Any, prefix: str = "") -> list[str]:
    """`key.path = value` lines, sorted: what a diff of two configs is read in."""
    if isinstance(doc, dict) and doc:
        lines: list[str] = []
        for key in sorted(doc):
            lines += flatten(doc[key], f"{prefix}.{key}" if prefix else str(key))
        return lines
    return [f"{prefix or '(empty)'} = {json.dumps(doc, ensure_ascii=False, sort_keys=True)}"]


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, str]]:
    """(sign, line): '+' added or changed to, '-' removed or changed from, ' ' kept."""
    old = set(flatten(before)) if before else set()
    new = set(flatten(after))
    keys = sorted({line.split(" = ", 1)[0] for line in old | new})
    out: list[tuple[str, str]] = []
    for key in keys:
        was = [line for line in old if line.split(" = ", 1)[0] == key]
        now = [line for line in new if line.split(" = ", 1)[0] == key]
        if was == now:
            out += [(" ", line) for line in now]
        else:
            out += [("-", line) for line in was] + [("+", line) for line in now]
    return out


@dataclass
class PushPreview:
    target: str
    version: int
    text: str
    config: dict[str, Any] | None
    current: dict[str, Any] | None          # what the broker retains now
    lines: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seen_version(self) -> int | None:
        value = (self.current or {}).get("version")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def next_version(current: dict[str, Any] | None, reported: dict[str, Any] | None) -> int:
    versions = [v for v in ((current or {}).get("version"), (reported or {}).get("version"))
                if isinstance(v, int) and not isinstance(v, bool)]
    return max(versions, default=0) + 1


def preview_push(opts: BrokerOptions, target: str, version_text: str, text: str
                 ) -> PushPreview:
    current = retained_desired(opts, target)
    try:
        version = int(version_text)
    except ValueError:
        version = 0
    preview = PushPreview(target, version, text, None, current)
    if len(text.encode("utf-8")) > MAX_DOCUMENT:
        preview.problems.append(f"the document is larger than {MAX_DOCUMENT // 1024} KiB")
        return preview
    try:
        preview.config = read_config_text(text, "the document")
        preview.notes = check_push(target, version, preview.config, current)
    except BadInput as exc:
        preview.problems += [line.strip() for line in str(exc).splitlines()
                             if line.strip() and not line.endswith("models:")]
    if preview.config is not None:
        preview.lines = diff((current or {}).get("config"), preview.config)
    return preview


def record(db: Database, username: str, kind: str, target: str, detail: dict[str, Any],
           outcome: str, error: str | None = None, cmd_id: str | None = None) -> int:
    row = db.one("INSERT INTO desk_actions (username, kind, target, detail, outcome, error, "
                 "cmd_id) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                 (username, kind, target, json.dumps(detail, ensure_ascii=False), outcome,
                  error, cmd_id))
    assert row is not None
    return int(row["id"])


def confirm_push(db: Database, opts: BrokerOptions, signer: Signer | None, username: str,
                 target: str, version: int, text: str, seen_version: int | None) -> int:
    """Publish through fleet.operations.push_config; returns the desk_actions id."""
    detail: dict[str, Any] = {"version": version, "signed": signer is not None}
    try:
        config = read_config_text(text, "the document")
        detail["config"] = config
        pushed = push_config(opts, target, version, config, signer, check_seen=True,
                             seen_version=seen_version)
    except (BadInput, FleetError) as exc:
        return record(db, username, "push_config", target, detail, "refused", str(exc))
    detail["previous"] = pushed.previous
    return record(db, username, "push_config", target, detail, "published")


@dataclass
class CommandPreview:
    cart: str
    name: str
    args: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def preview_command(cart: str, name: str, args_text: str) -> CommandPreview:
    preview = CommandPreview(cart, name, {})
    if name not in SIGNATURES:
        preview.problems.append(f"unknown command {name!r}")
        return preview
    try:
        preview.args = command_args(name, args_text.split())
        check_args(name, preview.args)  # the cart's own check of names and types
    except (BadInput, CommandError) as exc:
        preview.problems.append(str(exc))
    return preview


def confirm_command(db: Database, opts: BrokerOptions, signer: Signer | None, username: str,
                    cart: str, name: str, args_text: str) -> int:
    preview = preview_command(cart, name, args_text)
    detail: dict[str, Any] = {"name": name, "args": preview.args, "signed": signer is not None}
    if preview.problems:
        return record(db, username, "command", cart, detail, "refused",
                      "; ".join(preview.problems))
    doc = command_document(cart, name, preview.args, signer is not None)
    try:
        ensure_not_offline(opts, cart)
    except FleetError as exc:
        return record(db, username, "command", cart, detail, "refused", str(exc))
    # Recorded before it is published: its result may come back before publish() returns.
    action = record(db, username, "command", cart, detail, "sending", cmd_id=doc["id"])
    try:
        publish_command(opts, cart, doc, signer)
        outcome, error = "sent", None
    except FleetError as exc:
        outcome, error = "failed", str(exc)
    db.execute("UPDATE desk_actions SET outcome = %s, error = %s WHERE id = %s "
               "AND outcome = 'sending'", (outcome, error, action))
    return action
