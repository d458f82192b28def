"""docs/interfaces/ stays true to the code: every config key with its default, every command
and option, every topic and remote command; a contract addition marked "not in this version
yet" is really not there. And a clone is complete: every link in the README and docs resolves
inside the repository (nothing points at ../shared)."""

from __future__ import annotations

import argparse
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.admin.cli import parser as agent_parser
from agent.config import AgentConfig
from agent.contract import SIGNATURES, TX_TYPES, Topics
from fleet.cli import build_parser as fleet_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "interfaces"
NOT_YET = "not in this version yet"
REQUIRED = object()
ROW = re.compile(r"^\| `([^`]+)` \| (.*?) \| (.*) \|$", re.MULTILINE)  # key | default | text
ANY_ROW = re.compile(r"^\| `([^`]+)` \| (.*) \|$", re.MULTILINE)     # `first cell` | the rest


# --- links ------------------------------------------------------------------------------

def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
            REPO / "fuzz" / "README.md", REPO / "config" / "mosquitto" / "README.md"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", path.read_text(), re.M)}


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves_inside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "shared/spec" not in text
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.relative_to(REPO)}: broken link {target}"
        assert REPO in linked.parents or linked == REPO, f"{target} leaves the repository"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{path.relative_to(REPO)}: no #{anchor}"


# --- config keys ------------------------------------------------------------------------

def _model_keys(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = prefix + name
        keys[key] = REQUIRED if field.is_required() else field.default
        ann = field.annotation
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            del keys[key]
            keys.update(_model_keys(ann, key + "."))
        elif origin is list and args and isinstance(args[0], type) \
                and issubclass(args[0], BaseModel):
            keys.update(_model_keys(args[0], key + "[]."))
        elif origin is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
            keys.update(_model_keys(args[1], key + ".CODE."))
    return keys


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _default_matches(cell: str, default: Any) -> bool:
    if cell == "required":
        return default is REQUIRED
    if cell == "none":
        return default is None
    if cell.startswith("`") and cell.endswith("`"):
        return bool(tomllib.loads(f"v = {cell[1:-1]}")["v"] == _plain(default))
    # Free text names a table's entries, e.g. "gov, property, bills".
    return isinstance(default, dict) and bool(default) and all(k in cell for k in default)


def _documented(page: str) -> dict[str, tuple[str, bool]]:
    rows = ROW.findall((DOCS / page).read_text(encoding="utf-8"))
    return {key: (default, NOT_YET in text) for key, default, text in rows}


def test_every_config_key_is_documented_with_its_default() -> None:
    documented = _documented("config.md")
    for key, default in _model_keys(AgentConfig).items():
        assert key in documented, f"config.md: document {key}"
        cell, marked = documented[key]
        assert not marked, f"config.md: {key} is in this version now: drop '{NOT_YET}'"
        assert _default_matches(cell, default), f"config.md: {key} default {cell} != {default!r}"


def test_config_keys_marked_not_yet_are_not_accepted_yet() -> None:
    accepted = _model_keys(AgentConfig)
    marked = [k for k, (_, is_marked) in _documented("config.md").items() if is_marked]
    for key in marked:  # none left once every contract addition is in
        assert key not in accepted, f"config.md: {key} is in this version now: drop '{NOT_YET}'"


def test_the_example_config_is_the_documented_one() -> None:
    example = tomllib.loads((REPO / "config" / "example.toml").read_text(encoding="utf-8"))
    documented = _documented("config.md")

    def walk(doc: dict[str, Any], prefix: str = "") -> None:
        for name, value in doc.items():
            key = prefix + name
            if prefix == "ticket_services.":
                continue
            if isinstance(value, dict) and key not in documented:
                walk(value, key + ".")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for item in value:
                    walk(item, key + "[].")
            else:
                assert key in documented, f"config/example.toml has {key}: document it"

    walk(example)


# --- commands ---------------------------------------------------------------------------

def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _commands(p: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for name, sub in _subparsers(p).items():
        nested = _commands(sub, f"{prefix}{name} ")
        out.update(nested or {f"{prefix}{name}": sub})
    return out


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings if o.startswith("--")} - {"--help"}


def _command_rows(program: str) -> list[tuple[str, set[str], bool]]:
    """(command name, options shown, marked not yet) for each row of the tables."""
    rows = []
    for cell, text in ANY_ROW.findall((DOCS / "commands.md").read_text(encoding="utf-8")):
        words = cell.split()
        if words[0] != program:
            continue
        name = []
        for word in words[1:]:
            if word[0] in "-[(" or "|" in word or word.isupper():
                break
            name.append(word)
        options = set(re.findall(r"--[a-z][a-z-]*", cell))
        rows.append((" ".join(name), options, NOT_YET in text))
    return rows


@pytest.mark.parametrize("program", ["cart-agent", "cart-fleet"])
def test_every_command_and_option_is_documented(program: str) -> None:
    tree = agent_parser() if program == "cart-agent" else fleet_parser()
    rows = _command_rows(program)
    page = (DOCS / "commands.md").read_text(encoding="utf-8")
    for name, sub in _commands(tree).items():
        assert any(n == name and not marked for n, _, marked in rows), \
            f"commands.md: document `{program} {name}` (without '{NOT_YET}')"
        for option in _options(sub):
            assert re.search(rf"`[^`]*{option}\b", page), f"commands.md: {name} {option}"
    for name, options, marked in rows:
        if marked and name in _commands(tree):
            landed = options & _options(_commands(tree)[name])
            assert options, f"commands.md: `{program} {name}` marked '{NOT_YET}' names no option"
            assert not landed, \
                f"commands.md: `{program} {name} {' '.join(sorted(landed))}` is in this " \
                f"version now: drop '{NOT_YET}'"


def test_broker_options_marked_not_yet_are_not_there_yet() -> None:
    every = set().union(*(_options(p) for p in _commands(fleet_parser()).values()))
    page = (DOCS / "commands.md").read_text(encoding="utf-8")
    for option, text in ANY_ROW.findall(page):
        if option.startswith("--") and NOT_YET in text:
            assert option.split()[0] not in every, f"commands.md: {option} is in this version"


# --- MQTT -------------------------------------------------------------------------------

def test_every_topic_and_remote_command_is_documented() -> None:
    page = (DOCS / "mqtt.md").read_text(encoding="utf-8")
    topics = Topics("P", "C")
    for topic in [topics.tx, topics.ack, topics.status, topics.telemetry, topics.desired,
                  topics.fleet_desired, topics.reported, topics.cmd, topics.result]:
        assert f"| `{topic}` |" in page, f"mqtt.md: document {topic}"
    for name, args in SIGNATURES.items():
        row = re.search(rf"^\| `{name}` \| (.*)$", page, re.MULTILINE)
        assert row, f"mqtt.md: document the command {name}"
        for arg in args:
            assert f"`{arg}`" in row.group(1), f"mqtt.md: {name} takes {arg}"


def test_every_transaction_type_is_in_the_contract_and_documented() -> None:
    written = set()
    for path in (REPO / "agent").rglob("*.py"):
        written |= set(re.findall(r"""(?:append|record)\(\s*"([a-z_]+\.?[a-z_]*)\"""",
                                  path.read_text(encoding="utf-8")))
        written |= set(re.findall(r"'([a-z]+\.[a-z_]+)', \?, \?, 'pending'",
                                  path.read_text(encoding="utf-8")))
    assert written, "no transaction type found in the code"
    assert written <= TX_TYPES, f"not in agent.contract.TX_TYPES: {sorted(written - TX_TYPES)}"
    page = (DOCS / "mqtt.md").read_text(encoding="utf-8")
    for type_ in TX_TYPES:
        assert f"`{type_}`" in page, f"mqtt.md: list the transaction type {type_}"
