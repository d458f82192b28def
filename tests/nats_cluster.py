"""A real three-node NATS cluster for tests, benchmarks and `scripts/nats-cluster`.

Each node is Debian's `nats-server` (2.9) on free loopback ports: the NATS client port, a
cluster route port, an HTTP monitoring port (memory and connection figures) and the MQTT
front end the carts speak to. JetStream is on in every node (a temp store dir each), so the
carts' stream can be replicated three ways. `kill(i)` is SIGKILL (nothing flushed),
`start(i)` brings the node back on the same ports and store, as a restarted server would.

Every node runs the shipped `config/nats/node.conf` (what is node-specific comes from the
environment) with an `accounts.conf` beside it: the per-cart accounts made by
`fleet.nats_auth`, or by default one open account for load runs on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.mqtt_broker import free_port, wait_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
REPO = Path(__file__).resolve().parent.parent
NODE_CONF = REPO / "config" / "nats" / "node.conf"


@dataclass(frozen=True)
class NodePorts:
    client: int
    cluster: int
    http: int
    mqtt: int


def _distinct_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


class NatsCluster:
    """Three (or `size`) nodes named n1..nN in one cluster; indexes are 0-based."""

    host = "127.0.0.1"

    def __init__(self, size: int = 3, workdir: str | Path | None = None,
                 accounts_conf: str | Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="nats-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.size = size
        # nats-server resolves `include` relative to the including file: both files sit
        # in the work dir, written once here (rewriting one while a node reads it would
        # leave that node without accounts).
        shutil.copyfile(NODE_CONF, self.workdir / "node.conf")
        if accounts_conf is None:
            accounts_conf = write_open_accounts(self.workdir / "open-accounts.conf")
        if Path(accounts_conf).resolve() != (self.workdir / "accounts.conf").resolve():
            shutil.copyfile(accounts_conf, self.workdir / "accounts.conf")
        flat = _distinct_ports(4 * size)
        self.ports = [NodePorts(*flat[4 * i:4 * i + 4]) for i in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    # --- addresses ---------------------------------------------------------------------

    @property
    def nats_urls(self) -> list[str]:
        return [f"nats://{self.host}:{p.client}" for p in self.ports]

    @property
    def nats_url(self) -> str:
        """All nodes, comma-separated: what `cart-fleet ingest --nats` takes."""
        return ",".join(self.nats_urls)

    @property
    def mqtt_ports(self) -> list[int]:
        return [p.mqtt for p in self.ports]

    @property
    def conf_path(self) -> Path:
        return self.workdir / "node.conf"

    def log_path(self, i: int) -> Path:
        return self.workdir / f"n{i + 1}.log"

    # --- config ------------------------------------------------------------------------

    def _env(self, i: int) -> dict[str, str]:
        """The shipped `config/nats/node.conf` takes everything node-specific from here."""
        p = self.ports[i]
        store = self.workdir / f"js-n{i + 1}"
        store.mkdir(exist_ok=True)
        env = {"NATS_NAME": f"n{i + 1}", "NATS_LISTEN": f"{self.host}:{p.client}",
               "NATS_HTTP": f"{self.host}:{p.http}",
               "NATS_CLUSTER_LISTEN": f"{self.host}:{p.cluster}",
               "NATS_MQTT_LISTEN": f"{self.host}:{p.mqtt}", "NATS_STORE": str(store)}
        for k in range(3):  # a smaller cluster names its own nodes again
            q = self.ports[min(k, self.size - 1)]
            env[f"NATS_ROUTE_{k + 1}"] = f"nats-route://{self.host}:{q.cluster}"
        return env

    # --- life cycle --------------------------------------------------------------------

    def start(self, i: int | None = None, timeout_s: float = 30.0) -> NatsCluster:
        """Start one node (or all); waits until its ports listen."""
        indexes = range(self.size) if i is None else [i]
        for k in indexes:
            proc = self.procs[k]
            if proc is not None and proc.poll() is None:
                continue
            log = self.log_path(k).open("ab")
            self.procs[k] = subprocess.Popen([NATS_SERVER, "-c", str(self.conf_path)],
                                             stdout=log, stderr=log,
                                             env={**os.environ, **self._env(k)})
            log.close()
        for k in indexes:
            try:
                wait_port(self.host, self.ports[k].client, timeout_s)
                wait_port(self.host, self.ports[k].mqtt, timeout_s)
            except TimeoutError:
                raise RuntimeError(f"nats node n{k + 1} did not start: "
                                   f"{self.log_path(k).read_text()[-2000:]}") from None
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Every running node sees its routes and JetStream has a meta leader."""
        deadline = time.monotonic() + timeout_s
        running = [k for k in range(self.size) if self.running(k)]
        while time.monotonic() < deadline:
            try:
                ok = all(self.varz(k).get("routes", 0) >= len(running) - 1 for k in running)
                ok = ok and all(self._meta_leader(k) for k in running)
            except OSError:
                ok = False
            if ok:
                return
            time.sleep(0.2)
        raise TimeoutError("nats cluster not ready: " + self.log_path(0).read_text()[-1500:])

    def wait_mqtt(self, user: str | None = None, password: str | None = None,
                  timeout_s: float = 60.0) -> None:
        """Every running node accepts an MQTT session (CONNACK 0).

        A node answers MQTT as soon as it listens, but the first sessions fail ("lookup
        messages stream ... timeout") until JetStream has placed the MQTT streams.
        """
        from fleetsim import wire

        deadline = time.monotonic() + timeout_s
        for k in range(self.size):
            if not self.running(k):
                continue
            while True:
                if self._mqtt_ok(k, user, password, wire):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node n{k + 1} never accepted an MQTT session")
                time.sleep(0.2)

    def _mqtt_ok(self, k: int, user: str | None, password: str | None, wire: Any) -> bool:
        try:
            with socket.create_connection((self.host, self.ports[k].mqtt), timeout=5) as sock:
                sock.sendall(wire.connect(f"probe-n{k + 1}", 10, 4, True, user, password))
                reader = wire.Reader()
                while True:
                    data = sock.recv(4096)
                    if not data:
                        return False
                    for packet in reader.feed(data):
                        if packet.kind == wire.CONNACK:
                            ok = wire.parse_connack(packet.body) == 0
                            if ok:
                                sock.sendall(wire.DISCONNECT_BYTES)
                            return ok
        except OSError:
            return False

    def _meta_leader(self, i: int) -> bool:
        jsz = self.monitor(i, "jsz")
        return bool((jsz.get("meta_cluster") or {}).get("leader"))

    def kill(self, i: int) -> None:
        """SIGKILL: no goodbye to the routes, nothing flushed."""
        self._end(i, signal.SIGKILL)

    def stop(self, i: int) -> None:
        self._end(i, signal.SIGTERM)

    def _end(self, i: int, sig: int) -> None:
        proc = self.procs[i]
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs[i] = None

    def running(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    def pid(self, i: int) -> int | None:
        proc = self.procs[i]
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self) -> None:
        for k in range(self.size):
            self.kill(k)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- monitoring --------------------------------------------------------------------

    def monitor(self, i: int, endpoint: str) -> dict[str, Any]:
        url = f"http://{self.host}:{self.ports[i].http}/{endpoint}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        return doc

    def varz(self, i: int) -> dict[str, Any]:
        return self.monitor(i, "varz")

    def rss_bytes(self, i: int) -> int:
        """Resident memory of the node's process (from /proc, not the server's own view)."""
        pid = self.pid(i)
        if pid is None:
            return 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def connections(self, i: int) -> int:
        return int(self.varz(i).get("connections", 0))


def write_open_accounts(path: Path) -> Path:
    """An account with JetStream for everyone and no passwords: for load runs on loopback.

    MQTT on NATS needs a JetStream-enabled account; the default global account without an
    accounts block works only when `jetstream {}` is on, but an explicit one keeps the system
    account apart (the monitoring and JetStream meta traffic never mix with the carts').
    """
    path.write_text(
        "accounts {\n"
        "  CARTS { jetstream: enabled, users: [ { user: carts, password: carts } ] }\n"
        "  SYS { users: [ { user: sys, password: sys } ] }\n"
        "}\n"
        "system_account: SYS\n"
        "no_auth_user: carts\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """`scripts/nats-cluster`: a cluster by hand, driven from the terminal."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="scripts/nats-cluster")
    p.add_argument("--accounts", type=Path)
    p.add_argument("--workdir", type=Path)
    args = p.parse_args(argv)
    cluster = NatsCluster(workdir=args.workdir, accounts_conf=args.accounts)
    try:
        cluster.start()
        cluster.wait_ready()
        if args.accounts is None:
            cluster.wait_mqtt()
        print(f"NATS (cart-fleet ingest --transport nats --nats ...): {cluster.nats_url}")
        for i, port in enumerate(cluster.mqtt_ports):
            print(f"node n{i + 1}: MQTT 127.0.0.1:{port}  monitor "
                  f"http://127.0.0.1:{cluster.ports[i].http}/  pid {cluster.pid(i)}")
        print(f"logs and stores: {cluster.workdir}", flush=True)
        for line in sys.stdin:
            word, _, arg = line.strip().partition(" ")
            try:
                if word == "kill":
                    cluster.kill(int(arg) - 1)
                    print(f"n{arg} killed")
                elif word == "start":
                    cluster.start(int(arg) - 1)
                    print(f"n{arg} started, pid {cluster.pid(int(arg) - 1)}")
                elif word == "status":
                    for i in range(cluster.size):
                        up = cluster.running(i)
                        conns = cluster.connections(i) if up else 0
                        print(f"n{i + 1}: {'up' if up else 'down'}  {conns} connections  "
                              f"{cluster.rss_bytes(i) / 2**20:.0f} MiB")
                elif word in ("quit", "exit"):
                    break
                elif word:
                    print("commands: kill N, start N, status, quit")
            except (ValueError, IndexError, OSError, RuntimeError) as exc:
                print(f"error: {exc}")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        cluster._own_dir = args.workdir is None
        cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
