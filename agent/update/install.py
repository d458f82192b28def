"""Installing a release side by side: a new virtualenv under releases/V, filled only from the
release's own verified wheels (no index, no network), then asked to check the cart's config.

The running release is never touched. A directory is a usable release only once it holds
`.complete` (written last): an install cut short by a crash is removed and done again.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from agent.update.manifest import Manifest
from agent.update.state import write_atomic

log = logging.getLogger(__name__)

COMPLETE = ".complete"
INSTALL_TIMEOUT_S = 900.0


class InstallError(Exception):
    """The release could not be installed, or it refuses the cart's config."""


def is_complete(release: Path) -> bool:
    return (release / COMPLETE).exists()


def _run(cmd: list[str], what: str, timeout_s: float = INSTALL_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what}: {type(exc).__name__}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InstallError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


def _pip_wheel(wheels: Path) -> Path:
    found = sorted(wheels.glob("pip-*.whl"))
    if not found:
        raise InstallError("the release carries no pip wheel to install itself with")
    return found[-1]


def install(manifest: Manifest, wheels: Path, release: Path, python: str | None = None
            ) -> Path:
    """A complete venv at `release` holding cart-agent==version from `wheels`."""
    if is_complete(release):
        return release
    if release.exists():
        log.info("update: removing the unfinished install in %s", release)
        shutil.rmtree(release)
    base = str(python or getattr(sys, "_base_executable", None) or sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(release)], "creating the virtualenv", 120)
    new_python = str(release / "bin" / "python")
    # pip runs from its own wheel (a wheel is importable): the running release needs no pip.
    # --no-compile: byte-compiling every module of every package took most of the install
    # on a busy 2-core machine; Python compiles what the agent imports on its first start.
    _run([new_python, f"{_pip_wheel(wheels)}/pip", "install", "--no-index", "--no-cache-dir",
          "--no-compile", "--disable-pip-version-check", "--no-input", "--find-links", str(wheels),
          f"cart-agent=={manifest.version}"], "pip install")
    return release


def check_config(release: Path, config_path: str) -> None:
    """The new version's own `check-config` on the cart's config file: a release that would
    not start with it is refused before the switch."""
    _run([str(release / "bin" / "cart-agent"), "check-config", "-c", config_path],
         "the new version's check-config", 120)


def mark_complete(release: Path) -> None:
    write_atomic(release / COMPLETE, b"ok\n")
