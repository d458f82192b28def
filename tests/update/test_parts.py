"""The update's parts on real files, real symlinks and a real HTTP server: the manifest's
checks, resumed downloads, the boot guard's rollback, the `current` link, keeping two
releases, the roll-out's stable share, and the release key's one job."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import ConfigError, validate
from agent.contract import CommandError, check_args
from agent.jws import encode_public_key, sign
from agent.update import guard, slots, state
from agent.update.fetch import FetchError, HashMismatch, fetch_file
from agent.update.job import JobError, parse
from agent.update.manifest import Manifest, ManifestError, ReleaseFile, verify_manifest
from fleet.rollout import in_share
from tests.update.release_server import ReleaseServer

KEY = Ed25519PrivateKey.generate()
PUB = encode_public_key(KEY.public_key())


def manifest(version: str = "1.2.3", path: str = "wheels/a-1-py3-none-any.whl",
             data: bytes = b"wheel") -> Manifest:
    return Manifest(version=version, created="2026-12-02T00:00:00.000Z", min_config_schema=1,
                    store_schema=1, python="3.11",
                    files=(ReleaseFile(path, hashlib.sha256(data).hexdigest(), len(data)),))


def signed(m: Manifest, key: Ed25519PrivateKey = KEY, kid: str = "rel1") -> bytes:
    return sign(m.to_claims(), key, kid).encode()


def test_manifest_signed_by_a_release_key_verifies() -> None:
    got = verify_manifest(signed(manifest()), {"rel1": PUB}, "1.2.3")
    assert got.version == "1.2.3"
    assert got.kid == "rel1"
    assert got.files[0].size == 5


@pytest.mark.parametrize(("token", "keys", "version", "why"), [
    (signed(manifest(), Ed25519PrivateKey.generate()), {"rel1": PUB}, "1.2.3",
     "signature does not verify"),
    (signed(manifest(), kid="other"), {"rel1": PUB}, "1.2.3", "not trusted here"),
    (signed(manifest()), {}, "1.2.3", "no release key is trusted"),
    (signed(manifest()), {"rel1": PUB}, "1.2.4", "not 1.2.4"),
    (signed(manifest(path="wheels/../../etc/x.whl")), {"rel1": PUB}, "1.2.3",
     "must be wheels/NAME.whl"),
    (signed(manifest(version="../1")), {"rel1": PUB}, "../1", "version"),
    (b"not a jws", {"rel1": PUB}, "1.2.3", "manifest signature"),
])
def test_manifest_refusals(token: bytes, keys: dict[str, str], version: str, why: str) -> None:
    with pytest.raises(ManifestError, match=why.replace("(", r"\(")):
        verify_manifest(token, keys, version)


def test_fetch_resumes_over_a_dropping_link_and_checks_the_hash(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    www = tmp_path / "www" / "wheels"
    www.mkdir(parents=True)
    (www / "a-1-py3-none-any.whl").write_bytes(data)
    item = manifest(data=data).files[0]
    with ReleaseServer(tmp_path / "www", cut_after=40_000) as srv:
        got = fetch_file(srv.url, item, tmp_path / "dl", sleep=lambda _s: None)
        assert got.read_bytes() == data
        assert srv.drops >= 7
        assert srv.ranged() >= 7  # every drop resumed where it stopped, not from zero
        again = fetch_file(srv.url, item, tmp_path / "dl")  # already whole: no request
        assert again == got
        assert len(srv.requests) == 8
        wrong = ReleaseFile(item.path.replace("a-1", "b-1"), item.sha256, item.size)
        (www / "b-1-py3-none-any.whl").write_bytes(data[:-1] + b"\0")
        with pytest.raises(HashMismatch, match="does not match the manifest"):
            fetch_file(srv.url, wrong, tmp_path / "dl", sleep=lambda _s: None)
        assert not list((tmp_path / "dl" / "wheels").glob("b-1*"))  # no part kept to resume
        missing = ReleaseFile("wheels/c-1-py3-none-any.whl", item.sha256, item.size)
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch_file(srv.url, missing, tmp_path / "dl")


def _trial(data: Path, previous: Path, deadline_s: int = 60, starts: int = 0) -> None:
    state.save(data, {"trial": {"version": "2", "previous": "1", "previous_path": str(previous),
                                "switched_at": time.time(), "starts": starts,
                                "deadline_s": deadline_s, "need_broker": False}})


def test_guard_points_current_at_the_factory_then_rolls_a_crash_loop_back(tmp_path: Path
                                                                             ) -> None:
    data, factory = tmp_path / "data", tmp_path / "opt"
    factory.mkdir()
    assert "factory" in guard.check(data, factory, time.time())
    assert slots.current_target(data) == factory
    new = slots.release_path(data, "2")
    new.mkdir(parents=True)
    _trial(data, factory)
    slots.point_current(data, new)
    assert os.readlink(slots.current_link(data)) == "2"  # relative inside releases/
    for n in range(1, guard.MAX_STARTS + 1):
        assert f"start {n} of" in guard.check(data, factory, time.time())
        assert slots.current_target(data) == new
    said = guard.check(data, factory, time.time())
    assert "rolled back" in said
    assert slots.current_target(data) == factory
    outcome = state.load(data)["outcome"]
    assert outcome["ok"] is False
    assert "crash loop: 3 starts" in outcome["reason"]
    assert state.load(data)["trial"] is None


def test_guard_rolls_back_a_trial_past_twice_its_deadline(tmp_path: Path) -> None:
    data, old = tmp_path / "data", tmp_path / "data" / "releases" / "1"
    old.mkdir(parents=True)
    new = slots.release_path(data, "2")
    new.mkdir()
    _trial(data, old, deadline_s=10)
    slots.point_current(data, new)
    assert "rolled back" in guard.check(data, old, time.time() + 21)
    assert slots.current_target(data) == old


def test_keep_only_the_current_and_previous_release(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for version in ("1", "2", "3"):
        slots.release_path(data, version).mkdir(parents=True)
        slots.download_dir(data, version).mkdir(parents=True)
    slots.point_current(data, slots.release_path(data, "3"))
    removed = slots.keep_only(data, {slots.current_target(data) or Path(),
                                     slots.release_path(data, "2")})
    assert removed == ["1"]
    assert sorted(p.name for p in slots.releases_dir(data).iterdir()
                  if not p.name.startswith(".")) == ["2", "3", "current"]
    assert sorted(p.name for p in (slots.releases_dir(data) / ".download").iterdir()) == [
        "2", "3"]


def test_percent_is_a_stable_growing_share() -> None:
    carts = [f"bc-{n:03d}" for n in range(400)]
    ten = {c for c in carts if in_share(c, 10)}
    fifty = {c for c in carts if in_share(c, 50)}
    assert ten < fifty
    assert 20 <= len(ten) <= 60
    assert all(in_share(c, 100) for c in carts)


def test_the_update_command_is_in_the_one_table() -> None:
    check_args("update", {"version": "1.2.3", "url": "https://x/r", "window_s": 60})
    with pytest.raises(CommandError, match="window_s"):
        check_args("update", {"version": "1.2.3", "url": "https://x/r", "window_s": "60"})
    with pytest.raises(JobError, match="url"):
        parse({"version": "1.2.3", "url": "file:///etc"})
    with pytest.raises(JobError, match="deadline_s"):
        parse({"version": "1.2.3", "url": "http://x", "deadline_s": 5})


def test_a_release_key_has_one_job() -> None:
    doc = {"cart_id": "bc-1", "security": {"fleet_keys": {"f1": PUB},
                                           "release_keys": {"rel1": PUB}}}
    with pytest.raises(ConfigError, match="a key has one job"):
        validate(doc)
