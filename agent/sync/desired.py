"""Desired config from the fleet: checked whole, persisted, reported, rolled back if it cuts us off.

Two layers lie over the cart's TOML file: the fleet-wide document (`P/_all/config/desired`,
scope "fleet") and the cart's own (`P/C/config/desired`, scope "cart"), which wins. Each
scope's history is in `config_versions`; the layer in effect is the highest version whose
state is 'applied'. Versions only go forward: anything not above the highest version ever
seen for the scope (applied, rejected or rolled back) is never applied, so a retained message
redelivered on every reconnect, or a rolled-back config, cannot come back.

A config that changes the `mqtt` section is on probation until the cart reaches the broker
with it; if it cannot for `mqtt.config_rollback_s` (of that config) it is marked 'rolled_back'
and the previous layer is in effect again. The probation is in `meta`, so a restart during it
keeps counting.

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
from agent.store import Store
from agent.store.transactions import rfc3339
from agent.sync.control import ControlError, Signer, read_signed

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
)
MAX_VERSION = 2**53  # what any JSON parser keeps exactly
MAX_ERRORS = 20
REPORT_KEY = "sync.config_report"
PROBATION_KEY = "sync.config_probation"


def _layers(store: Store) -> dict[str, tuple[int, dict[str, Any]]]:
    rows = store.query(
        "SELECT scope, version, document FROM config_versions c WHERE state = 'applied' AND "
        "version = (SELECT MAX(version) FROM config_versions "
        "WHERE scope = c.scope AND state = 'applied')"
    )
    return {r["scope"]: (int(r["version"]), json.loads(r["document"])) for r in rows}


def config_versions(store: Store) -> dict[str, int | None]:
    layers = _layers(store)
    return {"config_version": layers["cart"][0] if "cart" in layers else None,
            "fleet_config_version": layers["fleet"][0] if "fleet" in layers else None}


def _compose(config_path: str, fleet: dict[str, Any] | None,
             cart: dict[str, Any] | None) -> AgentConfig:
    return load(config_path, *[doc for doc in (fleet, cart) if doc is not None])


def effective_config(config_path: str, store: Store) -> AgentConfig:
    """The file with the last applied fleet and cart layers over it (cart wins).

    If the file was edited so that a stored layer no longer fits, the layers that still fit
    are kept (cart alone, then fleet alone) and the problem is logged: the cart must start.
    """
    layers = _layers(store)
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
    status: Literal["applied", "rejected", "ignored"]
    scope: str
    version: int | None = None
    errors: list[str] = field(default_factory=list)
    config: AgentConfig | None = None  # the new effective config when applied
    mqtt_changed: bool = False


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
    """Decides on desired documents and keeps the record of it in the store."""

    def __init__(self, config_path: str, store: Store, cart_id: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.config_path = config_path
        self.store = store
        self.cart_id = cart_id
        self.clock = clock

    # --- reading a desired document ---------------------------------------------------

    def _parse(self, scope: str, payload: bytes, current: AgentConfig
               ) -> tuple[int, dict[str, Any], Signer]:
        label = LABEL[scope]
        doc, signer = read_signed(payload, current.security.fleet_keys,
                                  current.security.root_keys, label)
        unknown = sorted(set(doc) - {"version", "config", "cart"})
        if unknown:
            raise ControlError(f"{label}: unknown member(s): {', '.join(unknown)}")
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

    def _refusals(self, scope: str, version: int, config: dict[str, Any]) -> list[str]:
        label = f"{LABEL[scope]} v{version}"
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

    def handle(self, scope: str, payload: bytes, current: AgentConfig) -> Decision:
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
        problems = self._refusals(scope, version, config)
        layers = _layers(self.store)
        docs = {s: layers[s][1] for s in SCOPES if s in layers}
        docs[scope] = config
        if not problems:
            try:
                new_cfg = _compose(self.config_path, docs.get("fleet"), docs.get("cart"))
            except ConfigError as exc:
                problems = [f"{label}: {p}" for p in exc.problems]
        if not problems:
            changed = changed_keys(current, new_cfg)
            problems = self._root_refusals(label, changed, signer, current)
        if problems:
            return self._reject(scope, (version, config), problems, digest)
        mqtt_changed = new_cfg.mqtt != current.mqtt
        warnings = [] if changed else [
            f"{label}: changed nothing: every value it sets is already in effect"]
        now = self.clock()
        with self.store.write() as w:
            w.execute("INSERT INTO config_versions(scope, version, document, state, received_at, "
                      "errors) VALUES (?, ?, ?, 'applied', ?, '[]')",
                      (scope, version, json.dumps(config, sort_keys=True), rfc3339(now)))
            w.append("config.applied", {"scope": scope, "version": version, "changed": changed,
                                        "signer": str(signer)})
            if mqtt_changed:
                probation = {"scope": scope, "version": version,
                             "deadline": now + new_cfg.mqtt.config_rollback_s}
                self._set_meta(w, PROBATION_KEY, json.dumps(probation))
            self._set_report(w, "applied", [], changed, warnings)
            self._set_meta(w, *digest)
        log.info("%s applied", label)
        return Decision("applied", scope, version, [], new_cfg, mqtt_changed)

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

    # --- undoing ------------------------------------------------------------------------

    def undo(self, decision: Decision, reason: str) -> AgentConfig:
        """The daemon could not take an applied config: mark it rejected, back to the last."""
        errors = _clip([f"{LABEL[decision.scope]} v{decision.version}: {reason}"])
        self._unapply(decision.scope, decision.version, "rejected", errors)
        return effective_config(self.config_path, self.store)

    def probation(self) -> dict[str, Any] | None:
        text = self.store.get_meta(PROBATION_KEY)
        return json.loads(text) if text else None

    def pass_probation(self) -> None:
        if self.store.get_meta(PROBATION_KEY) is not None:
            self.store.set_meta(PROBATION_KEY, None)
            log.info("pushed config reached the broker; probation over")

    def rollback_due(self) -> bool:
        probation = self.probation()
        return probation is not None and self.clock() >= float(probation["deadline"])

    def rollback(self) -> AgentConfig:
        """The config on probation never reached the broker: back to the previous one."""
        probation = self.probation()
        if probation is None:
            return effective_config(self.config_path, self.store)
        scope, version = str(probation["scope"]), int(probation["version"])
        errors = [f"{LABEL[scope]} v{version}: rolled back: the broker could not be reached "
                  "with it before the rollback grace period ended"]
        self._unapply(scope, version, "rolled_back", errors)
        log.error("%s", errors[0])
        return effective_config(self.config_path, self.store)

    def _unapply(self, scope: str, version: int | None, state: str, errors: list[str]) -> None:
        with self.store.write() as w:
            w.execute("UPDATE config_versions SET state = ?, errors = ? "
                      "WHERE scope = ? AND version = ?",
                      (state, json.dumps(errors, ensure_ascii=False), scope, version))
            w.append("config.rejected", {"scope": scope, "version": version, "errors": errors})
            w.execute("DELETE FROM meta WHERE key = ?", (PROBATION_KEY,))
            self._set_report(w, "rejected", errors)

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
