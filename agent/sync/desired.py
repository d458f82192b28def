"""Desired config from the fleet: checked whole here, applied by the runtime, then recorded.

Sync reads a desired document and decides (`decide`): ignored, rejected (recorded at once:
nothing changes) or accepted. An accepted change goes to the runtime, the one owner of the
running config: it rebuilds what the change touches and only then records the outcome here
(`commit`, or `refuse` when rebuilding failed and it went back to the previous config), and
sync reports that outcome. Nothing is reported "applied" before it is.

Two layers lie over the cart's TOML file: the fleet-wide document (`P/_all/config/desired`,
scope "fleet") and the cart's own (`P/C/config/desired`, scope "cart"), which wins. Each
scope's history is in `config_versions`; the layer in effect is the highest version whose
state is 'applied'. Versions only go forward: anything not above the highest version ever
seen for the scope (applied, rejected or rolled back) is never applied, so a retained message
redelivered on every reconnect, or a rolled-back config, cannot come back.

A config that changes the `mqtt` section is on probation until the cart reaches the broker
with it; if it cannot for `mqtt.config_rollback_s` (of that config), sync asks the runtime to
go back to the previous layers, which then marks it 'rolled_back' (`commit_rollback`). The
probation is in `meta`, so a restart during it keeps counting.

Reports (`P/C/config/reported`): `version` and `fleet_version` are the versions in effect,
`status` and `errors` are the outcome of the last desired document handled; each error names
the scope and version it is about ("cart config v7: mqtt.port: ...").
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.config import AgentConfig, ConfigError, load
from agent.contract import rfc3339
from agent.store import Store
from agent.store.config_layers import applied_layers, config_versions
from agent.sync.downlink import ControlError, Signer, read_signed, server_time

log = logging.getLogger(__name__)

SCOPES = ("fleet", "cart")
LABEL = {"fleet": "fleet config", "cart": "cart config"}
NOT_PUSHABLE = {
    "cart_id": "must not be pushed: it identifies the cart and is set in its file",
    "data_dir": "must not be pushed: it holds the cart's database and is set in its file",
    "demo": "must not be pushed: only the cart's own file may declare it a demo",
}
# What only a root key may change (contract section 6): the trust anchors, the cart's broker
# endpoint and credentials, device and file paths, listen addresses. A fleet key that leaked
# could otherwise add a token key, replace the fleet keys for good, send the cart (and its
# password file) to another broker, open the screens to the network or aim the printer at
# cart.db.
ROOT_ONLY = (
    "security",
    "mqtt.host", "mqtt.port", "mqtt.username", "mqtt.password", "mqtt.password_file",
    "mqtt.tls", "mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file",
    "scanner.port", "scanner.camera", "printer.port", "printer.host", "printer.path",
    "locker.port", "web.listen", "web.port", "backup.dir",
    "audio.path", "audio.device", "light.chip", "light.path",
)
MAX_VERSION = 2**53  # what any JSON parser keeps exactly
MAX_ERRORS = 20
REPORT_KEY = "sync.config_report"
PROBATION_KEY = "sync.config_probation"


def _compose(config_path: str, fleet: dict[str, Any] | None,
             cart: dict[str, Any] | None) -> AgentConfig:
    return load(config_path, *[doc for doc in (fleet, cart) if doc is not None])


def effective_config(config_path: str, store: Store,
                     without: tuple[str, int] | None = None) -> AgentConfig:
    """The file with the last applied fleet and cart layers over it (cart wins); `without`
    (scope, version) leaves one applied layer out (what a rollback goes back to).

    If the file was edited so that a stored layer no longer fits, the layers that still fit
    are kept (cart alone, then fleet alone) and the problem is logged: the cart must start.
    """
    layers = applied_layers(store, without)
    fleet = layers["fleet"][1] if "fleet" in layers else None
    cart = layers["cart"][1] if "cart" in layers else None
    tried: list[tuple[int, int]] = []
    for f, c in ((fleet, cart), (None, cart), (fleet, None)):
        if (f is None and c is None) or (id(f), id(c)) in tried:
            continue
        tried.append((id(f), id(c)))
        try:
            return _compose(config_path, f, c)
        except ConfigError as exc:
            log.warning("pushed config no longer fits the file: %s", exc)
    return _compose(config_path, None, None)


@dataclass(frozen=True)
class Decision:
    """What sync made of one desired document. `accepted` goes to the runtime, which applies
    it and then records the outcome (commit or refuse); the others are recorded already."""

    status: Literal["accepted", "rejected", "ignored"]
    scope: str
    version: int | None = None
    errors: list[str] = field(default_factory=list)
    config: AgentConfig | None = None  # the new effective config, when accepted
    document: dict[str, Any] = field(default_factory=dict)  # the layer as pushed
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    signer: str = "unsigned"
    digest: tuple[str, str] = ("", "")  # (meta key, sha256 of the payload)

    @property
    def label(self) -> str:
        return f"{LABEL[self.scope]} v{self.version}"


@dataclass(frozen=True)
class Rollback:
    """Sync's request to the runtime: the config on probation never reached the broker."""

    scope: str
    version: int


def _flat(doc: dict[str, Any], at: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{at}.{key}" if at else key
        if isinstance(value, dict) and path != "ticket_services" and not path.startswith(
                "security."):
            out.update(_flat(value, path))
        else:
            out[path] = value
    return out


def changed_keys(old: AgentConfig, new: AgentConfig) -> list[str]:
    """Dotted keys whose value differs (key maps and lists count as one value each)."""
    a, b = _flat(old.model_dump()), _flat(new.model_dump())
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def root_only(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in ROOT_ONLY)


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _clip(errors: list[str]) -> list[str]:
    return [e[:400] for e in errors[:MAX_ERRORS]]


class DesiredConfig:
    """Decides on desired documents and keeps the record of every outcome in the store."""

    def __init__(self, config_path: str, store: Store, cart_id: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.config_path = config_path
        self.store = store
        self.cart_id = cart_id
        self.clock = clock
        # The server's `at` on a desired document: evidence, never live (it is retained).
        self.on_server_time: Callable[[float, bool], None] | None = None

    # --- reading a desired document ---------------------------------------------------

    def _parse(self, scope: str, payload: bytes, current: AgentConfig
               ) -> tuple[int, dict[str, Any], Signer]:
        label = LABEL[scope]
        doc, signer = read_signed(payload, current.security.fleet_keys,
                                  current.security.root_keys, label)
        unknown = sorted(set(doc) - {"version", "config", "cart", "at"})
        if unknown:
            raise ControlError(f"{label}: unknown member(s): {', '.join(unknown)}")
        at = server_time(doc, label)
        if at is not None and self.on_server_time is not None:
            self.on_server_time(at, False)
        version = doc.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ControlError(f"{label}: version must be an integer")
        if not 1 <= version <= MAX_VERSION:
            raise ControlError(f"{label}: version must be 1..{MAX_VERSION}")
        config = doc.get("config")
        if not isinstance(config, dict):
            raise ControlError(f"{label} v{version}: config must be an object")
        # A signed document may name its target so it cannot be replayed on another topic.
        target = "_all" if scope == "fleet" else self.cart_id
        if "cart" in doc and doc["cart"] != target:
            raise ControlError(f"{label} v{version}: meant for {doc['cart']!r}, not {target!r}")
        return version, config, signer

    @staticmethod
    def _refusals(label: str, config: dict[str, Any]) -> list[str]:
        problems = [f"{label}: {key}: {why}" for key, why in NOT_PUSHABLE.items() if key in config]
        mqtt = config.get("mqtt")
        if isinstance(mqtt, dict) and mqtt.get("enabled") is False:
            problems.append(f"{label}: mqtt.enabled: must not be pushed as false: "
                            "the cart would never hear from the fleet again")
        return problems

    @staticmethod
    def _root_refusals(label: str, changed: list[str], signer: Signer,
                       current: AgentConfig) -> list[str]:
        """One line per root-only key the push would change without a root signature."""
        if signer.role == "root":
            return []
        if not current.security.root_keys:
            why = "not pushable: no root key is configured (security.root_keys is empty)"
        else:
            why = f"needs a root key's signature; this push is {signer}"
        return [f"{label}: {key}: {why}" for key in changed if root_only(key)]

    def _highest_seen(self, scope: str) -> tuple[int, str | None] | None:
        rows = self.store.query(
            "SELECT version, document FROM config_versions WHERE scope = ? "
            "ORDER BY version DESC LIMIT 1", (scope,))
        return (int(rows[0]["version"]), rows[0]["document"]) if rows else None

    def decide(self, scope: str, payload: bytes, current: AgentConfig) -> Decision:
        """Check a desired document whole. A rejection is recorded (and reported) at once;
        an accepted change records nothing yet: the runtime applies it first."""
        if not payload:
            return Decision("ignored", scope)  # a cleared retained message
        digest = (f"sync.desired_digest.{scope}", _digest(payload))
        if self.store.get_meta(digest[0]) == digest[1]:
            return Decision("ignored", scope)  # the retained copy, redelivered on reconnect
        try:
            version, config, signer = self._parse(scope, payload, current)
        except ControlError as exc:
            return self._reject(scope, None, [str(exc)], digest)
        label = f"{LABEL[scope]} v{version}"
        seen = self._highest_seen(scope)
        if seen is not None and version <= seen[0]:
            same = version == seen[0] and seen[1] == json.dumps(config, sort_keys=True)
            if same:
                return Decision("ignored", scope, version)
            word = "older than" if version < seen[0] else "the same as"
            return self._reject(scope, None, [
                f"{label}: version {version} is {word} the latest seen ({seen[0]}); "
                "versions only go forward"], digest)
        problems = self._refusals(label, config)
        docs = {s: layer[1] for s, layer in applied_layers(self.store).items()}
        docs[scope] = config
        new_cfg: AgentConfig | None = None
        changed: list[str] = []
        if not problems:
            try:
                new_cfg = _compose(self.config_path, docs.get("fleet"), docs.get("cart"))
            except ConfigError as exc:
                problems = [f"{label}: {p}" for p in exc.problems]
        if new_cfg is not None:
            changed = changed_keys(current, new_cfg)
            problems = self._root_refusals(label, changed, signer, current)
        if problems or new_cfg is None:
            return self._reject(scope, (version, config), problems, digest)
        warnings = [] if changed else [
            f"{label}: changed nothing: every value it sets is already in effect"]
        return Decision("accepted", scope, version, [], new_cfg, config, changed, warnings,
                        str(signer), digest)

    def _reject(self, scope: str, row: tuple[int, dict[str, Any]] | None,
                errors: list[str], digest: tuple[str, str]) -> Decision:
        errors = _clip(errors)
        with self.store.write() as w:
            if row is not None:
                w.execute("INSERT INTO config_versions(scope, version, document, state, "
                          "received_at, errors) VALUES (?, ?, ?, 'rejected', ?, ?)",
                          (scope, row[0], json.dumps(row[1], sort_keys=True),
                           rfc3339(self.clock()), json.dumps(errors, ensure_ascii=False)))
            w.append("config.rejected", {"scope": scope,
                                         "version": row[0] if row else None, "errors": errors})
            self._set_report(w, "rejected", errors)
            # In the same transaction as the decision: a crash cannot lose the message.
            self._set_meta(w, *digest)
        log.warning("%s rejected: %s", LABEL[scope], "; ".join(errors))
        return Decision("rejected", scope, row[0] if row else None, errors)

    # --- recording what the runtime did with an accepted change --------------------------

    def commit(self, decision: Decision, mqtt_changed: bool) -> dict[str, Any]:
        """The runtime runs with the change now: record it applied; returns the report."""
        assert decision.status == "accepted"
        assert decision.config is not None
        now = self.clock()
        with self.store.write() as w:
            w.execute("INSERT INTO config_versions(scope, version, document, state, received_at, "
                      "errors) VALUES (?, ?, ?, 'applied', ?, '[]')",
                      (decision.scope, decision.version,
                       json.dumps(decision.document, sort_keys=True), rfc3339(now)))
            w.append("config.applied", {"scope": decision.scope, "version": decision.version,
                                        "changed": decision.changed, "signer": decision.signer})
            if mqtt_changed:
                probation = {"scope": decision.scope, "version": decision.version,
                             "deadline": now + decision.config.mqtt.config_rollback_s}
                self._set_meta(w, PROBATION_KEY, json.dumps(probation))
            self._set_report(w, "applied", [], decision.changed, decision.warnings)
            self._set_meta(w, *decision.digest)
        log.info("%s applied", decision.label)
        return self.report()

    def refuse(self, decision: Decision, reason: str) -> dict[str, Any]:
        """The runtime could not run with the change and went back: record it rejected."""
        errors = _clip([f"{decision.label}: not applied: {reason}"])
        self._reject(decision.scope, (int(decision.version or 0), decision.document), errors,
                     decision.digest)
        return self.report()

    def unrecorded(self, status: str, errors: list[str]) -> dict[str, Any]:
        """A report for an outcome the store could not take (a full disk): said all the
        same, with the versions still in effect."""
        versions = config_versions(self.store)
        return {"version": versions["config_version"],
                "fleet_version": versions["fleet_config_version"], "status": status,
                "errors": _clip(errors), "at": rfc3339(self.clock()), "changed": [],
                "warnings": []}

    # --- probation and rollback -----------------------------------------------------------

    def probation(self) -> dict[str, Any] | None:
        text = self.store.get_meta(PROBATION_KEY)
        return json.loads(text) if text else None

    def pass_probation(self) -> None:
        if self.store.get_meta(PROBATION_KEY) is not None:
            self.store.set_meta(PROBATION_KEY, None)
            log.info("pushed config reached the broker; probation over")

    def rollback_due(self) -> Rollback | None:
        probation = self.probation()
        if probation is None or self.clock() < float(probation["deadline"]):
            return None
        return Rollback(str(probation["scope"]), int(probation["version"]))

    def rollback_target(self, rollback: Rollback) -> AgentConfig:
        """The config the cart goes back to: the layers in effect without that one."""
        return effective_config(self.config_path, self.store,
                                without=(rollback.scope, rollback.version))

    def commit_rollback(self, rollback: Rollback) -> dict[str, Any]:
        """The runtime went back: mark the config rolled back; returns the report."""
        errors = [f"{LABEL[rollback.scope]} v{rollback.version}: rolled back: the broker "
                  "could not be reached with it before the rollback grace period ended"]
        with self.store.write() as w:
            w.execute("UPDATE config_versions SET state = 'rolled_back', errors = ? "
                      "WHERE scope = ? AND version = ?",
                      (json.dumps(errors, ensure_ascii=False), rollback.scope, rollback.version))
            w.append("config.rejected", {"scope": rollback.scope, "version": rollback.version,
                                         "errors": errors})
            w.execute("DELETE FROM meta WHERE key = ?", (PROBATION_KEY,))
            self._set_report(w, "rejected", errors)
        log.error("%s", errors[0])
        return self.report()

    # --- the report ---------------------------------------------------------------------

    @staticmethod
    def _set_meta(w: Any, key: str, value: str) -> None:
        w.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _set_report(self, w: Any, status: str, errors: list[str],
                    changed: list[str] | None = None, warnings: list[str] | None = None
                    ) -> None:
        # Read inside the write so the versions are those this very transaction leaves.
        rows = w.execute(
            "SELECT scope, MAX(version) FROM config_versions WHERE state = 'applied' "
            "GROUP BY scope").fetchall()
        versions = {scope: version for scope, version in rows}
        # `changed` (the keys this outcome changed) and `warnings` go beside the contract's
        # members: "applied" alone did not say that a push changed nothing.
        report = {"version": versions.get("cart"), "fleet_version": versions.get("fleet"),
                  "status": status, "errors": errors, "at": rfc3339(self.clock()),
                  "changed": changed or [], "warnings": warnings or []}
        self._set_meta(w, REPORT_KEY, json.dumps(report, ensure_ascii=False))

    def report(self) -> dict[str, Any]:
        """What to publish (retained) on config/reported: the last outcome, or the state now."""
        text = self.store.get_meta(REPORT_KEY)
        if text:
            stored: dict[str, Any] = json.loads(text)
            return stored
        versions = config_versions(self.store)
        return {"version": versions["config_version"],
                "fleet_version": versions["fleet_config_version"],
                "status": "applied", "errors": [], "at": rfc3339(self.clock()),
                "changed": [], "warnings": []}
