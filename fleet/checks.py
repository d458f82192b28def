"""Checks a desired config before it is published, with the cart's own models.

A pushed document is partial: the cart lays it over its TOML file and validates the whole
(agent/sync/desired.py). The fleet side does not have that file, so it checks what it can
know: every key must exist in the models (with its path: `mqtt.colour: unknown key`), every
value must have the right type and bounds, and the keys the cart never accepts over MQTT are
refused here too. Rules that combine several keys (`printer.kind = "network"` needs
`printer.host`) may be satisfied by the cart's file; those are returned as notes, not
refusals, and the cart has the last word (it reports a rejection on `config/reported`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.config import AgentConfig
from agent.sync.desired import NOT_PUSHABLE

# cart_id is required by the model but never pushed: a placeholder lets the rest validate.
_PLACEHOLDER_CART = "fleet-check"


@dataclass
class ConfigCheck:
    problems: list[str] = field(default_factory=list)  # refuse to publish
    notes: list[str] = field(default_factory=list)     # the cart decides with its file

    @property
    def ok(self) -> bool:
        return not self.problems


def key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue  # pydantic's names for validator wrappers, not keys
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(loc: tuple[int | str, ...]) -> bool:
    """True when `loc` names a nested model (a table), not a single value."""
    model: type[BaseModel] = AgentConfig
    for part in loc:
        if not isinstance(part, str) or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return True


def check_config_document(config: dict[str, Any]) -> ConfigCheck:
    check = ConfigCheck()
    for key, why in NOT_PUSHABLE.items():
        if key in config:
            check.problems.append(f"{key}: {why}")
    mqtt = config.get("mqtt")
    if isinstance(mqtt, dict) and mqtt.get("enabled") is False:
        check.problems.append("mqtt.enabled: must not be pushed as false: the cart would never "
                              "hear from the fleet again")
    document = {k: v for k, v in config.items() if k not in NOT_PUSHABLE}
    try:
        AgentConfig.model_validate({"cart_id": _PLACEHOLDER_CART, **document})
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            path = key_path(loc)
            if err["type"] == "extra_forbidden":
                check.problems.append(f"{path}: unknown key")
            elif err["type"] == "value_error" and loc and _model_at(loc):
                # A rule of a whole table: other keys of it may come from the cart's file.
                # The rule names its keys ("host: ...; port: ..."): one key format everywhere.
                for finding in err["msg"].removeprefix("Value error, ").split("; "):
                    key, _, why = finding.partition(": ")
                    check.notes.append(f"{path}.{key}: {why} (unless the cart's file provides it)"
                                       if why else f"{path}: {finding} (unless the cart's file "
                                       "provides it)")
            else:
                check.problems.append(f"{path}: {err['msg'].removeprefix('Value error, ')}")
    return check
