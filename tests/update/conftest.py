"""Releases built once per session: the checkout as it is (installed in this .venv, the
cart's factory install) and the same code as version 0.1.1, built into a signed release."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.keys import keygen, read_signing_key
from fleet.release import build

REPO = Path(__file__).resolve().parents[2]
NEXT = "0.1.1"


@dataclass(frozen=True)
class Built:
    root: Path
    keys: Path
    release: Path  # the built 0.1.1 release (OUT/0.1.1)
    release_pub: str
    fleet_pub: str


def copy_checkout(dest: Path, version: str) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    shutil.copytree(REPO / "agent", dest / "agent", ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    init = dest / "agent" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', text),
                    encoding="utf-8")
    assert f'"{version}"' in init.read_text(encoding="utf-8")
    return dest


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("releases")
    keys = root / "keys"
    rel_pem, rel_pub = keygen(keys, "rel1")
    _, fleet_pub = keygen(keys, "f1")
    source = copy_checkout(root / "src", NEXT)
    release = build(source, root / "out", read_signing_key(rel_pem), "rel1")
    return Built(root, keys, release, rel_pub.read_text().strip(),
                 fleet_pub.read_text().strip())
