"""One demo run: its own directory, its own port, the real daemon, the walk-through, the end.

Every run makes a fresh directory (simulated devices, store, log, the run's config) and
removes only that one when it ends, so a demo kept running, another demo and the tests never
touch each other's files. The web screens take a free port; a kept demo takes 8765 when it
is free, so its address is easy to remember.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.admin.control_client import call
from agent.config import AgentConfig, load, overlay, read_document, validate
from agent.devices.sim.cart import SimulatedCart
from agent.toml_write import to_toml
from demo.walk import REPO, Demo, Screen, say, walk

CONFIG = REPO / "config" / "demo.toml"
DEMO_PIN = "246810"  # config/demo.toml holds its scrypt hash
KEPT_PORT = 8765
SOCKET_PATH_MAX = 107  # a Unix socket's path and its NUL fit in 108 bytes


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        # As the web server does: a port in TIME_WAIT after the last demo is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(keep: bool, asked: int | None) -> int:
    """The web port: as asked; 8765 for a kept demo when free; else 0 (any free port, read
    back from the daemon's health)."""
    if asked is not None:
        return asked
    return KEPT_PORT if keep and port_is_free(KEPT_PORT) else 0


def write_run_config(run_dir: Path, sim: SimulatedCart, port: int) -> Path:
    """config/demo.toml with this run's directory, devices and web port laid over it."""
    doc = overlay(read_document(CONFIG), {
        "data_dir": str(run_dir / "data"),
        "scanner": {"port": str(sim.scanner.path)},
        "printer": {"port": str(sim.printer.path)},
        "locker": {"port": str(sim.locker.path)},
        "web": {"port": port},
    })
    validate(doc)
    path = run_dir / "agent.toml"
    path.write_text("# This demo run's config: config/demo.toml with the run's own directory "
                    "and port.\n" + to_toml(doc), encoding="utf-8")
    return path


def zone_label(cfg: AgentConfig) -> str:
    offset = datetime.now(cfg.tz).strftime("%z")  # e.g. +0800
    return f"{cfg.timezone} (UTC{offset[:3]}:{offset[3:]})"


def _wait_ready(proc: subprocess.Popen[bytes], cfg: AgentConfig) -> bool:
    """The control socket answers and the scanner has its port open: the scanner drops what
    waited on the port when it opens it, so a first scan sent earlier would be lost."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if (Path(cfg.data_dir) / "control.sock").exists():
            try:
                ping = next(iter(call(cfg.data_dir, {"op": "ping"})))
            except (OSError, StopIteration):
                ping = {}
            if (ping.get("health", {}).get("scanner") or {}).get("ok"):
                return True
        time.sleep(0.1)
    return False


def _web_address(cfg: AgentConfig) -> tuple[str | None, str | None]:
    """(base URL, None) once the screens listen, else (None, the reason)."""
    deadline = time.monotonic() + 5
    web: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ping = next(iter(call(cfg.data_dir, {"op": "ping"})))
        web = ping.get("health", {}).get("web") or {}
        if web.get("ok") and web.get("port"):
            return f"http://{cfg.web.listen}:{web['port']}", None
        time.sleep(0.1)
    return None, str(web.get("error") or "the screens did not start")


def _screens(cfg: AgentConfig) -> None:
    """Where the running cart's screens are (a kept demo)."""
    base, problem = _web_address(cfg)
    if base is None:
        say(f"The screens are not available: {problem}")
        return
    say("The screens (the cart keeps running; ^C stops it)")
    print(f"  resident screen    {base}/\n  attendant console  {base}/attendant  PIN {DEMO_PIN}",
          flush=True)


def _how_to_try_the_screens() -> None:
    base = f"http://127.0.0.1:{KEPT_PORT}"
    say("Try the screens: `scripts/demo --keep` keeps the cart running, then open")
    print(f"  resident screen    {base}/\n  attendant console  {base}/attendant  PIN {DEMO_PIN}\n"
          f"  (port {KEPT_PORT} when it is free; the kept demo prints the one it takes)")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def make_run_dir() -> Path:
    """A fresh directory for this run, under $TMPDIR (or /tmp when that is too deep for the
    control socket's path)."""
    run_dir = Path(tempfile.mkdtemp(prefix="cart-demo-"))
    if len(str(run_dir / "data" / "control.sock")) > SOCKET_PATH_MAX:
        run_dir.rmdir()
        run_dir = Path(tempfile.mkdtemp(prefix="cart-demo-", dir="/tmp"))
    return run_dir


def _start_daemon(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """The real daemon, as on a cart: `cart-agent run`, logging to the run's agent.log."""
    with log_path.open("w") as log:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(config_path)],
                                stdout=log, stderr=log, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the demo as ^C does: daemon stopped, files removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description="The real cart daemon on simulated devices, offline.")
    parser.add_argument("--keep", action="store_true",
                        help="keep the cart running afterwards with its screens, until ^C")
    parser.add_argument("--port", type=int, metavar="PORT",
                        help="port of the screens (default: 8765 with --keep when it is free, "
                             "else any free port; 0: any free port)")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    signal.signal(signal.SIGTERM, _interrupt)

    run_dir = make_run_dir()
    sim = SimulatedCart(run_dir / "dev")
    config_path = write_run_config(run_dir, sim, choose_port(args.keep, args.port))
    cfg = load(config_path)
    log_path = run_dir / "agent.log"
    proc = _start_daemon(config_path, log_path)
    failure: str | None = None
    try:
        if not _wait_ready(proc, cfg):
            failure = "the cart did not start"
        else:
            say(f"cart {cfg.cart_id} running on simulated devices in {run_dir}; "
                f"local times are {zone_label(cfg)}")
            walk(Demo(sim, Screen(cfg.data_dir), cfg.cart_id))
            say("9. What the cart holds now (cart-agent status)")
            time.sleep(1.2)
            subprocess.run([sys.executable, "-m", "agent", "status", "-c", str(config_path)],
                           cwd=REPO, check=False)
            print(f"\nEvery record above is in the cart's store ({cfg.db_path}) and waits for "
                  "the broker (none in this demo): offline-first.")
            if args.keep:
                _screens(cfg)
                proc.wait()
    except KeyboardInterrupt:
        print()
    except (TimeoutError, ConnectionError, OSError) as exc:
        failure = f"the walk-through stopped: {exc}"
    finally:
        agent_exit = _stop(proc)
        sim.close()
    if failure or agent_exit != 0:
        sys.stdout.flush()
        print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
        print(f"\ndemo failed: {failure or f'the agent exited with {agent_exit}'}; its files "
              f"are kept in {run_dir}", file=sys.stderr)
        return 1
    shutil.rmtree(run_dir, ignore_errors=True)
    if not args.keep:
        _how_to_try_the_screens()
    print(f"\nDemo over: the cart stopped cleanly and {run_dir} is removed.")
    return 0
