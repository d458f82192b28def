"""A release's manifest: what it holds (every file with its sha256 and size), which version it
is, what it needs of the cart; signed (JWS, Ed25519) with a release key.

The release key has one job: carts trust it in `security.release_keys` (root-signed config
only). A token, fleet or root key does not sign releases, and a release key signs nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.jws import JwsError, key_map, verify

MANIFEST_NAME = "manifest.jws"
KIND = "cart-agent-release"
FORMAT = 1
VERSION_PATTERN = re.compile(r"^[0-9][0-9A-Za-z.+-]{0,31}$")
FILE_PATTERN = re.compile(r"^wheels/[A-Za-z0-9_.+-]{1,200}\.whl$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 256 * 1024
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_FILES = 500


class ManifestError(ValueError):
    """A manifest refused: the reason says why (signature, key, field)."""


@dataclass(frozen=True)
class ReleaseFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    created: str
    min_config_schema: int
    store_schema: int
    python: str
    files: tuple[ReleaseFile, ...]
    kid: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_claims(self) -> dict[str, Any]:
        return {"kind": KIND, "format": FORMAT, "version": self.version,
                "created": self.created, "min_config_schema": self.min_config_schema,
                "store_schema": self.store_schema, "python": self.python,
                "files": [{"path": f.path, "sha256": f.sha256, "size": f.size}
                          for f in self.files]}


def check_version(version: object) -> str:
    if not isinstance(version, str) or not VERSION_PATTERN.match(version) or ".." in version:
        raise ManifestError(f"version {str(version)[:40]!r}: use 1-32 of 0-9 A-Z a-z . + - "
                            "starting with a digit")
    return version


def _int(doc: dict[str, Any], key: str, high: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
        raise ManifestError(f"{key}: must be an integer 0..{high}")
    return value


def _files(raw: object) -> tuple[ReleaseFile, ...]:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_FILES:
        raise ManifestError(f"files: must list 1-{MAX_FILES} files")
    out: list[ReleaseFile] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"path", "sha256", "size"}:
            raise ManifestError(f"files[{i}]: must hold path, sha256 and size")
        path, digest = item["path"], item["sha256"]
        if not isinstance(path, str) or not FILE_PATTERN.match(path) or ".." in path:
            raise ManifestError(f"files[{i}].path: must be wheels/NAME.whl")
        if not isinstance(digest, str) or not SHA256_PATTERN.match(digest):
            raise ManifestError(f"files[{i}].sha256: must be 64 lower-case hex digits")
        out.append(ReleaseFile(path, digest, _int(item, "size", MAX_FILE_BYTES)))
    if len({f.path for f in out}) != len(out):
        raise ManifestError("files: a path is listed twice")
    return tuple(out)


def from_claims(doc: dict[str, Any], kid: str = "") -> Manifest:
    if doc.get("kind") != KIND or doc.get("format") != FORMAT:
        raise ManifestError(f"not a {KIND} manifest of format {FORMAT}")
    created, python = doc.get("created"), doc.get("python")
    if not isinstance(created, str) or not isinstance(python, str):
        raise ManifestError("created and python: must be strings")
    return Manifest(version=check_version(doc.get("version")), created=created[:40],
                    min_config_schema=_int(doc, "min_config_schema", 1000),
                    store_schema=_int(doc, "store_schema", 100_000), python=python[:16],
                    files=_files(doc.get("files")), kid=kid)


def verify_manifest(token: bytes, release_keys: dict[str, str], expected_version: str
                    ) -> Manifest:
    """The manifest, if a trusted release key signed it and it is the version asked for;
    ManifestError with the reason otherwise."""
    if not release_keys:
        raise ManifestError("no release key is trusted here (security.release_keys is empty)")
    if len(token) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest longer than {MAX_MANIFEST_BYTES} bytes")
    try:
        verified = verify(token.decode("ascii").strip(), key_map(release_keys),
                          max_bytes=MAX_MANIFEST_BYTES)
    except UnicodeDecodeError:
        raise ManifestError("manifest is not a JWS (not ASCII)") from None
    except JwsError as exc:
        raise ManifestError(f"manifest signature: {exc}") from None
    manifest = from_claims(verified.claims, verified.kid)
    if manifest.version != expected_version:
        raise ManifestError(f"manifest is for version {manifest.version}, "
                            f"not {expected_version}")
    return manifest
