"""The README's demo command stays true: the real daemon on the simulators, offline; each run
in its own directory and on its own port, so runs never touch each other's files."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

from agent.config import load
from agent.web.auth import verify_pin

REPO = Path(__file__).resolve().parents[1]


def demo(tmp: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The demo's command line, and an environment that puts its run directory under tmp."""
    tmp.mkdir()
    return [sys.executable, "-m", "demo", *args], {**os.environ, "TMPDIR": str(tmp)}


def test_the_demo_pin_is_the_one_printed() -> None:
    assert verify_pin("246810", load(REPO / "config" / "demo.toml").security.attendant_pin_hash)


def check_walk_through(out: subprocess.CompletedProcess[str], tmp: Path) -> Path:
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "local times are Asia/Shanghai (UTC+08:00)" in text
    assert "投递模式" in text                                   # courier deposit mode
    assert "号柜门已打开" in text
    assert "取件凭条" in text
    assert "李奶奶" in text
    assert "红烧肉" in text
    assert "政务服务 2 号" in text                               # two tickets
    assert "此二维码已于" in text                               # the replay refused
    assert "签名错误" in text
    assert "无法识别" in text
    assert "pending" in text
    assert "last sync never" in text
    assert "attendant console  http://127.0.0.1:8765/attendant  PIN 246810" in text
    run_dir = _run_dir(text)
    assert text.rstrip().splitlines()[-1] == (
        f"Demo over: the cart stopped cleanly and {run_dir} is removed.")
    assert not run_dir.exists()
    assert list(tmp.iterdir()) == []
    assert "agent_exit" not in text
    return run_dir


def _run_dir(text: str) -> Path:
    """The run's own directory, as the demo announces it (under $TMPDIR, or /tmp when that is
    too deep for a socket path)."""
    found = re.search(r"running on simulated devices in (\S+);", text)
    assert found, text[-3000:]
    return Path(found.group(1))


def _login(base: str, pin: str) -> int:
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/attendant")
        page = conn.getresponse()
        body = page.read().decode()
        cookie = page.headers["Set-Cookie"].split(";", 1)[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', body)
        assert csrf, body[:500]
        conn.request("POST", "/attendant/login",
                     body=urllib.parse.urlencode({"pin": pin, "csrf": csrf.group(1)}),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Cookie": cookie, "Origin": base})
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def test_demo_walks_through_the_day_beside_a_kept_demo(tmp_path: Path) -> None:
    """A kept demo serves its console (the printed PIN logs in) on a port of its own while a
    second run walks through the day in its own directory; neither touches the other."""
    cmd, env = demo(tmp_path / "k", "--keep", "--port", "0")
    kept = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        assert kept.stdout is not None
        for line in kept.stdout:
            lines.append(line)
            if "attendant console" in line:
                break
        console = re.search(r"attendant console  (http://127\.0\.0\.1:(\d+))/attendant  "
                            r"PIN (\d+)", lines[-1])
        assert console, "".join(lines)[-3000:]
        base, pin = console.group(1), console.group(3)
        assert console.group(2) != "8765"                       # --port 0: a free port
        assert _login(base, pin) == 303                         # the printed PIN logs in
        kept_dir = _run_dir("".join(lines))
        db = kept_dir / "data" / "cart.db"

        cmd, env = demo(tmp_path / "p")
        other_dir = check_walk_through(subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120), tmp_path / "p")
        assert other_dir != kept_dir
        assert db.is_file()
        assert _login(base, pin) == 303
    finally:
        kept.send_signal(signal.SIGTERM)
        rest, errors = kept.communicate(timeout=30)
    assert kept.returncode == 0, errors[-3000:]
    assert rest.rstrip().endswith(f"{kept_dir} is removed.")
    assert not kept_dir.exists()
