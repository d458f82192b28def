"""The one TOML writer: what it writes reads back as the same document (checked with the
standard library's own TOML reader), and it runs where provisioning runs it: a bare python3
with no site packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from agent.config import validate
from agent.toml_write import TomlError, to_toml
from tests.mqtt_broker import REPO
from tests.support import offline_config


def test_a_cart_config_reads_back_the_same(tmp_path) -> None:
    services = {"gov": {"zh": "政务服务 \"窗口\"", "en": "Gov"}}
    doc = offline_config(tmp_path, ticket_services=services,
                         locker={"enabled": True, "port": "/dev/ttyUSB0", "compartments": [
                             {"id": "A01", "board": 1, "lock": 1, "size": "S"},
                             {"id": "A02", "board": 1, "lock": 2, "size": "M"}]})
    text = to_toml(doc)
    assert tomllib.loads(text) == doc
    assert "[[locker.compartments]]" in text
    assert "[ticket_services.gov]" in text
    validate(tomllib.loads(text))


@pytest.mark.parametrize("doc", [
    {"a": None},                      # TOML has no null
    {"a": float("nan")},              # reads back unequal to itself
    {1: "x"},                         # keys are strings
    {"a": b"bytes"},
])
def test_what_toml_cannot_say_is_refused(doc) -> None:
    with pytest.raises(TomlError):
        to_toml(doc)


def test_odd_keys_and_strings_are_quoted() -> None:
    doc = {"key with space": "line\nbreak", "t": {"ключ": "\u0000\u007f", "ok-key_1": [1, 2.5]}}
    assert tomllib.loads(to_toml(doc)) == doc


def test_it_imports_nothing_but_the_standard_library() -> None:
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import agent.toml_write; "
             "print(agent.toml_write.to_toml({'cart_id': 'bc-11'}), end='')")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(REPO)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'cart_id = "bc-11"\n'
