"""The updater's own decisions on real files and a real HTTP server: a disk too small is found
before anything is downloaded; the `cart-fleet` release and update commands' refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.jws import b64url_decode, sign
from agent.update import slots, state
from agent.update.job import parse
from agent.update.manifest import MANIFEST_NAME, Manifest, ReleaseFile
from agent.update.updater import Hooks, Updater
from fleet.cli import main as fleet_main
from fleet.rollout import choose
from tests.support import Mounted, can_mount
from tests.update.conftest import NEXT, Built
from tests.update.release_server import ReleaseServer
from tests.update.test_parts import KEY, PUB

pytestmark = pytest.mark.timeout(300)


def hooks(records: list[tuple[str, dict[str, Any]]]) -> Hooks:
    return Hooks(quiet=lambda: None, healthy=lambda _need: None, broker_up=lambda: False,
                 restart=lambda _why: None, record=lambda t, d: records.append((t, d)),
                 announce=lambda: None, release_keys=lambda: {"rel1": PUB})


def big_release(www: Path) -> None:
    """A signed manifest naming a 40 MB wheel (not there: it must never be asked for)."""
    item = ReleaseFile("wheels/big-1-py3-none-any.whl", hashlib.sha256(b"").hexdigest(),
                       40 * 1024 * 1024)
    m = Manifest(version="9.9.9", created="2026-12-02T00:00:00.000Z", min_config_schema=1,
                 store_schema=1, python=f"{sys.version_info[0]}.{sys.version_info[1]}",
                 files=(item,))
    (www / "9.9.9").mkdir(parents=True)
    (www / "9.9.9" / MANIFEST_NAME).write_text(sign(m.to_claims(), KEY, "rel1"))


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small tmpfs")
def test_a_disk_too_small_is_found_before_the_download(tmp_path: Path) -> None:
    big_release(tmp_path / "www")
    data = tmp_path / "data"
    disk = Mounted(data, size="8m")
    try:
        records: list[tuple[str, dict[str, Any]]] = []
        updater = Updater(str(data), str(tmp_path / "agent.toml"), hooks(records))
        with ReleaseServer(tmp_path / "www") as srv:
            updater.accept(parse({"version": "9.9.9", "url": srv.url}))
            updater.step()
            asked = [path for path, _status in srv.requests]
        job = state.load(data)["job"]
        assert "not enough disk" in job["error"]
        assert "MB needed" in job["error"]
        assert asked == ["/9.9.9/manifest.jws"]  # the wheel was never asked for
        assert job["step"] == "fetching"  # kept: tried again in 30 s (disk may be freed)
    finally:
        disk.close()


def test_release_publish_and_update_refusals(tmp_path: Path, built: Built,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    www = tmp_path / "www"
    assert fleet_main(["release", "publish", str(built.release), "--to", str(www)]) == 0
    assert (www / NEXT / MANIFEST_NAME).exists()
    assert fleet_main(["release", "publish", str(built.release), "--to", str(www)]) == 2
    assert "never replaced" in capsys.readouterr().err
    altered = tmp_path / "altered" / NEXT
    altered.parent.mkdir()
    shutil.copytree(built.release, altered)
    wheel = next((altered / "wheels").glob("cart_agent-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"x")
    assert fleet_main(["release", "publish", str(altered), "--to", str(tmp_path / "w2")]) == 2
    assert "not what the manifest says" in capsys.readouterr().err
    claims = json.loads(b64url_decode((www / NEXT / MANIFEST_NAME).read_text().split(".")[1]))
    assert claims["version"] == NEXT
    assert {f["path"].split("/")[1].split("-")[0] for f in claims["files"]} >= {
        "cart_agent", "pydantic", "paho_mqtt", "pip"}
    # update: the release must be reachable where the carts will look
    with ReleaseServer(tmp_path / "empty-www") as srv:
        (tmp_path / "empty-www").mkdir()
        code = fleet_main(["update", "--version", NEXT, "--url", srv.url, "--cart", "bc-1"])
    assert code == 2
    assert "publish the release first" in capsys.readouterr().err


def test_all_and_percent_choose_from_the_carts_seen() -> None:
    known = {f"bc-{n:02d}": {"state": "online"} for n in range(40)}
    assert choose(None, True, None, known) == sorted(known)
    some = choose(None, False, 25, known)
    assert 0 < len(some) < 40
    assert set(some) <= set(choose(None, False, 60, known))
    assert choose(["bc-07"], False, None, known) == ["bc-07"]


def test_the_switch_waits_for_quiet_and_never_leaves_the_window(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old, new = data / "releases" / "1.0.0", data / "releases" / "9.9.9"
    for release in (old, new):
        (release / "bin").mkdir(parents=True)
        (release / ".complete").write_text("ok\n")

    slots.point_current(data, old)
    noise: list[str | None] = ["door(s) open: 1:1"]
    restarts: list[str] = []
    records: list[tuple[str, dict[str, Any]]] = []
    base = hooks(records)
    h = Hooks(quiet=lambda: noise[0], healthy=base.healthy, broker_up=lambda: True,
              restart=restarts.append, record=base.record, announce=base.announce,
              release_keys=base.release_keys)
    clock = [1000.0]
    updater = Updater(str(data), "agent.toml", h, clock=lambda: clock[0], version="1.0.0")
    updater.accept(parse({"version": "9.9.9", "url": "http://x", "window_s": 60}))
    updater.step()
    assert state.load(data)["job"]["step"] == "waiting"
    clock[0] += 61  # the window ends while the door is still open
    updater.step()
    outcome = state.load(data)["outcome"]
    assert outcome["ok"] is False
    assert "window ended before a quiet moment (door(s) open: 1:1)" in outcome["reason"]
    assert slots.current_target(data) == old
    assert new.exists()  # installed and sound: kept for the next command
    assert records[-1][0] == "software.update"

    updater.accept(parse({"version": "9.9.9", "url": "http://x", "window_s": 60}))
    noise[0] = None  # quiet now
    updater.step()
    assert slots.current_target(data) == new
    trial = state.load(data)["trial"]
    assert trial["previous_path"] == str(old)
    assert trial["need_broker"] is True
    assert restarts == ["switching to version 9.9.9"]
