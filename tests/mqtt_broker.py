"""A real Mosquitto for tests and benchmarks: free loopback port, temp config, start/stop/kill.

Persistence is on (in a temp dir) so `stop()` (SIGTERM: Mosquitto saves its state) and
`kill()` (SIGKILL: the in-memory state since the last autosave is lost) behave differently,
as they do on a real server. `user root` because Mosquitto started as root otherwise drops to
user `mosquitto`, which cannot write the temp dir; `set_tcp_nodelay true` because Nagle's
algorithm otherwise stalls small acks (see FACTS.md).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
REPO = Path(__file__).resolve().parent.parent
ACL_FILE = REPO / "config" / "mosquitto" / "acl"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    """Write a Mosquitto password file (hashed by mosquitto_passwd itself)."""
    path.write_text("")
    for user, password in users.items():
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(path), user, password], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


class MosquittoBroker:
    """One Mosquitto process; the port stays the same across restarts."""

    host = "127.0.0.1"

    def __init__(self, workdir: str | Path | None = None, port: int | None = None,
                 password_file: Path | None = None, acl_file: Path | None = None,
                 extra: str = "") -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mosq-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password_file = password_file
        self.acl_file = acl_file
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"

    def _write_conf(self) -> None:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "user root",
            "persistence true",
            f"persistence_location {data}/",
            "set_tcp_nodelay true",
            # Tests push bursts at a subscriber; do not let the default (1000) drop silently.
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.extra:
            lines.append(self.extra)
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self) -> MosquittoBroker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self._write_conf()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.host, self.port)
        except TimeoutError:
            self.kill()
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"mosquitto did not start: {log[-2000:]}") from None
        return self

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM: a clean shutdown, Mosquitto writes its persistence file."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: whatever Mosquitto held in memory is gone."""
        self._end(signal.SIGKILL)

    def restart(self, kill: bool = False) -> None:
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class AmqttBroker:
    """amqtt (a pure-Python MQTT 3.1.1 broker) as a subprocess on a free port."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AmqttBroker:
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: {self.host}:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
        )
        # The console script beside the running interpreter, so tests work from any venv.
        exe = Path(sys.executable).parent / "amqtt"
        if not exe.exists():
            exe = Path(shutil.which("amqtt") or "amqtt")
        log = (self.workdir / "amqtt.log").open("wb")
        self.proc = subprocess.Popen([str(exe), "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        try:
            wait_port(self.host, self.port, timeout_s=15)
        except TimeoutError:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
