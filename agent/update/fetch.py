"""Downloading a release over a link that drops: HTTP range requests resume a partial file.

Each file goes to NAME.part and is renamed only once its size and sha256 match the manifest,
so a file under its final name is always whole and right. A server that ignores the range
(200 instead of 206) sends the file from the start, and the part is started over.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from agent.update.manifest import ReleaseFile

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TIMEOUT_S = 20.0
USER_AGENT = "cart-agent-update/1"


class FetchError(Exception):
    """A file could not be fetched (after retries): worth trying again later."""


class HashMismatch(FetchError):
    """A whole file that is not what the manifest says: the release is refused."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_small(url: str, limit: int) -> bytes:
    """A small document (the manifest) in one request; FetchError on any failure."""
    try:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            data: bytes = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
    if len(data) > limit:
        raise FetchError(f"{url}: longer than {limit} bytes")
    return data


def _one_request(url: str, part: Path, size: int) -> None:
    """Append to `part` what the server sends from its current length on."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            mode = "ab" if have and resp.status == 206 else "wb"
            with part.open(mode) as out:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    if out.tell() > size:
                        raise HashMismatch(f"{url}: longer than the manifest's {size} bytes")
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have >= size:  # nothing left to send: the part is whole
            return
        raise FetchError(f"{url}: HTTP {exc.code}") from None


def fetch_file(base_url: str, item: ReleaseFile, dest_dir: Path, attempts: int = 30,
               sleep: Callable[[float], None] = time.sleep) -> Path:
    """The file under dest_dir, whole and verified, resuming across dropped connections."""
    final = dest_dir / item.path
    if final.exists() and final.stat().st_size == item.size and sha256_of(final) == item.sha256:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    url = f"{base_url.rstrip('/')}/{item.path}"
    drops = 0
    while True:
        try:
            _one_request(url, part, item.size)
        except (OSError, http.client.HTTPException) as exc:
            drops += 1
            if drops >= attempts:
                raise FetchError(f"{url}: gave up after {drops} dropped connections: "
                                 f"{type(exc).__name__}") from None
            log.info("update: %s dropped at %d bytes (%s); resuming", item.path,
                     part.stat().st_size if part.exists() else 0, type(exc).__name__)
            sleep(min(30.0, 0.2 * drops))
            continue
        got = part.stat().st_size if part.exists() else 0
        if got < item.size:
            drops += 1  # the server closed cleanly before the end: resume the same way
            if drops >= attempts:
                raise FetchError(f"{url}: gave up at {got} of {item.size} bytes")
            continue
        break
    digest = sha256_of(part)
    if digest != item.sha256:
        part.unlink(missing_ok=True)  # a wrong file is not resumed: fetch it whole next time
        raise HashMismatch(f"{item.path}: sha256 {digest[:16]}... does not match the manifest's "
                         f"{item.sha256[:16]}...")
    os.replace(part, final)
    return final
