"""A TCP proxy between the cart and the broker that delays, drops and stalls, like a mobile
link. (This kernel has no sch_netem, so `tc netem` in a network namespace is not available;
the proxy does the same on loopback.)"""

from __future__ import annotations

import random
import socket
import threading
import time
from contextlib import suppress


class LossyProxy:
    def __init__(self, upstream_port: int, seed: int = 1, delay_ms: tuple[int, int] = (0, 0),
                 drop_per_chunk: float = 0.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.rng = random.Random(seed)
        self.delay_ms = delay_ms
        self.drop_per_chunk = drop_per_chunk
        self.stalled = False            # accept and hold connections, forward nothing
        self.refusing = False           # close new connections at once
        self.drops = 0
        self.chunks = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            src.settimeout(0.2)
        except OSError:      # the other direction already closed both sockets
            return
        while not self._stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            while self.stalled and not self._stop.is_set():
                time.sleep(0.05)
            with self._lock:
                self.chunks += 1
                drop = self.rng.random() < self.drop_per_chunk
                low, high = self.delay_ms
                delay = self.rng.uniform(low, high) / 1000 if high else 0.0
            if drop:                 # the link dies mid-stream: both sides see a reset
                with self._lock:
                    self.drops += 1
                break
            if delay:
                time.sleep(delay)
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut_all(self) -> None:
        """Every open connection dies at once (a cell handover)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.cut_all()
        self._server.close()
