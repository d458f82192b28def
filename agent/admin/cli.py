"""`cart-agent`: the daemon and the maintenance commands (contract section 1).

The entry: the one module outside the runtime that imports it (to run the daemon, and to
build the cart a maintenance command drives when no daemon runs).

Exit codes: 0 success, 1 operational failure (device, broker or disk), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__
from agent.admin.config_check import check_config, check_data_dir
from agent.config import AgentConfig, ConfigError, config_path, load

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="config file (default $CART_AGENT_CONFIG or "
                   "/etc/cart-agent/agent.toml)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cart-agent", description="Offline-first daemon of a roadside service cart")
    p.add_argument("--version", action="version", version=f"cart-agent {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in (("run", "run the daemon in the foreground"),
                       ("check-config", "validate the config file"),
                       ("print-test", "print a test receipt")):
        _config_arg(sub.add_parser(name, help=text))
    st = sub.add_parser("status", help="queue, sync, config versions, devices, compartments")
    _config_arg(st)
    st.add_argument("--json", action="store_true")
    doc = sub.add_parser("doctor", help="check an installed cart: one line per check")
    _config_arg(doc)
    doc.add_argument("--json", action="store_true")
    scan = sub.add_parser("scan-test", help="print each scan as it is read")
    _config_arg(scan)
    scan.add_argument("--count", type=int, default=0, help="stop after N scans (0: until ^C)")
    sub.add_parser("hash-pin", help="read an attendant PIN on stdin, print its scrypt hash")
    rs = sub.add_parser("restore", help="put the store back from a backup (daemon stopped)")
    _config_arg(rs)
    rs.add_argument("--from", dest="source", help="a backup file (default: the newest usable "
                    "one in the backup directory)")
    rs.add_argument("--any-store", action="store_true", help="accept a backup of another "
                    "store of this cart than the one identity.json names")
    att = sub.add_parser("attendant", help="the attendant console")
    asub = att.add_subparsers(dest="attendant_command", required=True, parser_class=_Parser)
    _config_arg(asub.add_parser("unlock", help="clear every PIN lockout (recorded)"))
    locker = sub.add_parser("locker", help="compartment doors and locks")
    lsub = locker.add_subparsers(dest="locker_command", required=True, parser_class=_Parser)
    ls = lsub.add_parser("status", help="door and lock state from the boards")
    _config_arg(ls)
    ls.add_argument("id", nargs="?")
    lo = lsub.add_parser("open", help="open one compartment (recorded as locker.open)")
    _config_arg(lo)
    lo.add_argument("id")
    lo.add_argument("--reason", default="maintenance")
    return p


def _load(path: str | None) -> AgentConfig:
    return load(config_path(path))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return check_config(args.config)
        if args.command == "hash-pin":
            return hash_pin()
        if args.command == "doctor":  # an invalid config is one of its findings (exit 1)
            from agent.admin.doctor import doctor

            return doctor(config_path(args.config), args.json)
        cfg = _load(args.config)
        if args.command == "status":  # reads only: a data_dir it may not write is fine
            from agent.admin import maintenance as status_reader

            return status_reader.status(cfg, args.json)
        problems = check_data_dir(cfg)
        if problems:
            for line in problems:
                print(line, file=sys.stderr)
            return EXIT_USAGE
        if args.command == "run":
            from agent.runtime.run import run_daemon

            return run_daemon(cfg, config_path(args.config))
        if args.command == "restore":
            return restore(cfg, args.source, args.any_store)
        if args.command == "attendant":
            return attendant_unlock(cfg)
        from agent.admin import maintenance
        from agent.runtime.offline import OfflineCart

        local = OfflineCart(cfg)  # used only when no daemon answers on the control socket
        if args.command == "locker":
            if args.locker_command == "status":
                return maintenance.locker_status(cfg, args.id)
            return maintenance.locker_open(cfg, args.id, args.reason, local)
        if args.command == "print-test":
            return maintenance.print_test(cfg, local)
        if args.command == "scan-test":
            if args.count < 0:
                print("cart-agent: --count must be 0 or more", file=sys.stderr)
                return EXIT_USAGE
            return maintenance.scan_test(cfg, args.count, local)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_USAGE


def attendant_unlock(cfg: AgentConfig) -> int:
    """Through the running daemon's control socket, or on the store when it is stopped."""
    import os
    import pwd

    from agent.admin.control_client import call
    from agent.store import Store, StoreError
    from agent.web.auth import reset_lockout

    try:
        replies = list(call(cfg.data_dir, {"op": "lockout_reset"}))
    except ConnectionError:
        uid = os.getuid()
        try:
            store = Store(cfg.db_path, cfg.cart_id)
        except StoreError as exc:
            print(f"cart-agent: {exc}", file=sys.stderr)
            return EXIT_FAIL
        try:
            result = reset_lockout(store, f"uid:{uid} ({pwd.getpwuid(uid).pw_name})")
        finally:
            store.close()
    else:
        if not replies or not replies[0].get("ok"):
            error = replies[0].get("error") if replies else "no answer"
            print(f"cart-agent: {error}", file=sys.stderr)
            return EXIT_FAIL
        result = replies[0]["result"]
    print(f"attendant console unlocked ({result['cleared']} client(s) cleared)")
    return EXIT_OK


def restore(cfg: AgentConfig, source: str | None, any_store: bool) -> int:
    from pathlib import Path

    from agent.store.restore import RestoreError
    from agent.store.restore import restore as run_restore

    try:
        report = run_restore(cfg.cart_id, cfg.db_path, cfg.backup_dir,
                             Path(source) if source else None, any_store)
    except RestoreError as exc:
        print(f"cart-agent: restore refused: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"restored {cfg.db_path} from {report.backup} (backup at seq {report.backup_seq})")
    if report.applied:
        print("  kept from identity.json: " + ", ".join(
            f"{n} {what.replace('_', ' ')}" for what, n in report.applied.items()))
    if report.lost:
        print(f"  seq {report.lost[0]}..{report.lost[1]} could not be brought back (those that "
              "reached the server are there); recorded in a store.restored transaction")
    print(f"  seq continues at {report.restored_seq}")
    if report.damaged_kept:
        print(f"  the damaged database is kept as {report.damaged_kept}")
    return EXIT_OK


def hash_pin() -> int:
    import getpass

    from agent.web.auth import hash_pin as make_hash

    pin = getpass.getpass("attendant PIN: ") if sys.stdin.isatty() else sys.stdin.readline()
    pin = pin.strip()
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        print("cart-agent: a PIN is 4 to 12 digits", file=sys.stderr)
        return EXIT_USAGE
    print(make_hash(pin))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())



