"""`cart-fleet desk` and `cart-fleet desk-user`: argument checks and start-up."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleet.client import BrokerOptions
from fleet.desk.auth import AuthError, add_user, list_users, remove_user
from fleet.desk.db import Database, DeskDbError
from fleet.desk.schema import TABLE_NAME, migrate
from fleet.keys import BadInput, parse_ttl
from fleet.operations import Signer


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadInput(f"--listen {text!r}: use HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _timezone(name: str) -> str:
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {name!r}") from None
    import datetime as dt

    # Usage is counted in UTC hours; a zone a fraction of an hour off UTC would cut local
    # days through the middle of an hour.
    for month in (1, 7):
        offset = dt.datetime(2026, month, 1, tzinfo=zone).utcoffset() or dt.timedelta()
        if offset.total_seconds() % 3600:
            raise BadInput(f"time zone {name}: the desk needs a whole-hour offset from UTC")
    return name


def _db_url(url: str) -> str:
    if not url.startswith(("postgresql://", "postgres://")):
        raise BadInput("--db: the desk reads PostgreSQL: postgresql://USER@HOST/DB")
    return url


def run_desk(args: argparse.Namespace, broker: BrokerOptions, signer: Signer | None) -> int:
    from fleet.desk.app import Desk, DeskSettings

    _db_url(args.db)
    host, port = _listen(args.listen)
    if not TABLE_NAME.match(args.table):
        raise BadInput(f"bad table name {args.table!r}")
    settings = DeskSettings(db_url=args.db, host=host, port=port, broker=broker, signer=signer,
                            timezone=_timezone(args.timezone),
                            offline_alarm_s=parse_ttl(args.offline_alarm), table=args.table,
                            trusted_proxy=args.trusted_proxy)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        desk = Desk(settings).start()
    except (DeskDbError, OSError) as exc:
        print(f"cart-fleet: {exc}", file=sys.stderr)
        return 1
    try:
        desk.serve_forever(stop)
    finally:
        desk.stop()
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise BadInput("the two passwords differ")
    return first


def desk_user(args: argparse.Namespace) -> int:
    if args.action in ("add", "remove") and not args.name:
        raise BadInput(f"desk-user {args.action} needs a user name")
    _db_url(args.db)
    try:
        db = Database(args.db, size=1)
        migrate(db)
        if args.action == "list":
            for user in list_users(db):
                locked = f"  locked until {user['locked_until']}" if user["locked_until"] else ""
                print(f"{user['username']:<24}{user['role']:<10}{locked}")
            return 0
        if args.action == "remove":
            if not remove_user(db, args.name):
                raise BadInput(f"no user {args.name!r}")
            print(f"removed {args.name}")
            return 0
        created = add_user(db, args.name, _read_password(args.password_stdin), args.role)
        print(f"{'added' if created else 'updated'} {args.name} ({args.role})")
        return 0
    except AuthError as exc:
        raise BadInput(str(exc)) from None
    except DeskDbError as exc:
        print(f"cart-fleet: {exc}", file=sys.stderr)
        return 1
