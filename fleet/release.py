"""`cart-fleet release build|publish`: a signed release of the agent from a checkout.

A release is a directory VERSION/ holding wheels/ (the agent's wheel, every dependency's wheel
pinned to the versions of the building environment, and pip's own wheel so that a cart can
install without pip of its own) and manifest.jws (every file's sha256 and size, the version,
the Python it is built for, the config and store schemas), signed with a release key.

Building needs the index once (`pip download`); `--wheels DIR` takes the dependencies from a
directory instead (an earlier release's wheels/), with no network at all. Wheels are for the
building machine's Python and platform: build on the carts' kind of machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.contract import rfc3339
from agent.jws import sign
from agent.update.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    ReleaseFile,
    check_version,
    from_claims,
)
from fleet.client import FleetError
from fleet.keys import BadInput

_META = ("import json, agent, agent.contract as c, agent.store.schema as s; "
         "print(json.dumps({'version': agent.__version__, 'config_schema': c.CONFIG_SCHEMA, "
         "'store_schema': s.SCHEMA_VERSION}))")


# The agent's build requirements travel in every release, so that the next one can be built
# from this one's wheels with no network (`--wheels`); carts never install them.
BUILD_REQUIRES = ("setuptools>=77", "wheel")


class BuildError(FleetError):
    """A step of building or publishing failed (exit 1)."""


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-4:])
        raise BuildError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def source_meta(source: Path) -> dict[str, object]:
    """Version and schemas of the checkout being built (not of the installed agent)."""
    out = _run([sys.executable, "-c", _META], "reading the checkout's version", cwd=source)
    meta: dict[str, object] = json.loads(out)
    return meta


def locked_requirements() -> str:
    """This environment's exact versions, as pip constraints (the agent itself left out)."""
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], "pip freeze")
    keep = [line for line in frozen.splitlines()
            if line and not line.startswith(("-e", "#", "cart-agent", "cart-fleet"))
            and " @ " not in line]
    return "\n".join(keep) + "\n"


def _pip_version() -> str:
    import pip

    return str(pip.__version__)


def file_entries(wheels: Path) -> tuple[ReleaseFile, ...]:
    out = []
    for path in sorted(wheels.glob("*.whl")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(ReleaseFile(f"wheels/{path.name}", digest, path.stat().st_size))
    return tuple(out)


def build(source: Path, out_dir: Path, key: Ed25519PrivateKey, kid: str,
          wheels_from: Path | None = None) -> Path:
    """Build and sign out_dir/VERSION; returns it. Refuses to overwrite a release."""
    if not (source / "agent" / "__init__.py").exists():
        raise BadInput(f"{source}: not a cart-agent checkout (no agent/__init__.py)")
    meta = source_meta(source)
    version = check_version(meta["version"])
    final = out_dir / version
    if final.exists():
        raise BadInput(f"{final} exists: a release is never rebuilt under the same version")
    staging = out_dir / f".{version}.building"
    shutil.rmtree(staging, ignore_errors=True)
    wheels = staging / "wheels"
    wheels.mkdir(parents=True)
    try:
        source_flags = (["--no-index", "--find-links", str(wheels_from)] if wheels_from
                        else [])
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
              "-q", "-w", str(wheels), *source_flags, str(source)],
             "building the agent's wheel")
        agent_wheels = list(wheels.glob("cart_agent-*.whl"))
        if len(agent_wheels) != 1:
            raise BuildError(f"expected one cart_agent wheel, found {len(agent_wheels)}")
        constraints = staging / "constraints.txt"
        constraints.write_text(locked_requirements(), encoding="utf-8")
        _run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
              "--only-binary=:all:", "-d", str(wheels), "-c", str(constraints), *source_flags,
              str(agent_wheels[0]), f"pip=={_pip_version()}", *BUILD_REQUIRES],
             "collecting the dependencies' wheels")
        constraints.unlink()
        manifest = Manifest(version=version, created=rfc3339(time.time()),
                            min_config_schema=int(str(meta["config_schema"])),
                            store_schema=int(str(meta["store_schema"])),
                            python=f"{sys.version_info[0]}.{sys.version_info[1]}",
                            files=file_entries(wheels))
        (staging / MANIFEST_NAME).write_text(sign(manifest.to_claims(), key, kid) + "\n",
                                             encoding="ascii")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def read_release(release: Path) -> Manifest:
    """The release's manifest, after checking every file against it (not the signature: the
    cart checks that with the keys it trusts)."""
    from agent.jws import b64url_decode

    try:
        token = (release / MANIFEST_NAME).read_text(encoding="ascii").strip()
        claims = json.loads(b64url_decode(token.split(".")[1]))
        manifest = from_claims(claims)
    except (OSError, ValueError, IndexError, ManifestError) as exc:
        raise BadInput(f"{release}: not a release ({exc})") from None
    for item in manifest.files:
        path = release / item.path
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != item.sha256:
            raise BadInput(f"{path}: missing or not what the manifest says")
    return manifest


def publish(release: Path, www: Path) -> Path:
    """Copy a checked release to www/VERSION (under a temporary name, then renamed, so a web
    server never serves half of one). A published version is never replaced."""
    manifest = read_release(release)
    final = www / manifest.version
    if final.exists():
        raise BadInput(f"{final} exists: a published release is never replaced; "
                       "bump the version")
    www.mkdir(parents=True, exist_ok=True)
    staging = www / f".{manifest.version}.publishing"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(release, staging)
    os.replace(staging, final)
    return final
