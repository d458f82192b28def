"""A cart in a child process, for tests that kill it: SyncService on the real store, and
optionally a writer recording transactions as fast as a busy cart would.

    python cart_child.py CONFIG [--write]

Prints "online" once connected (then keeps running) and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from agent.config import load
from agent.store import Store
from agent.sync.desired import effective_config
from agent.sync.service import SyncService


def main() -> None:
    config_path = sys.argv[1]
    write = "--write" in sys.argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    file_cfg = load(config_path)
    store = Store(file_cfg.db_path, file_cfg.cart_id)
    cfg = effective_config(config_path, store)

    def no_commands(name: str, args: dict[str, object]) -> object:
        return None

    service = SyncService(cfg, config_path, store, health_snapshot=dict,
                          command_handler=no_commands, hand_over=lambda _change: None,
                          started_at=time.time())
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    said_online = False
    n = 0
    while not stop.is_set():
        if not said_online and service.online():
            print("online", flush=True)
            said_online = True
        if write:
            store.record("ticket.issue", {"service": "gov", "number": n})
            n += 1
            time.sleep(0.003)
        else:
            time.sleep(0.01)
    thread.join(5)
    store.close()


if __name__ == "__main__":
    main()
