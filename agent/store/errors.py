"""Typed store errors: the flows answer a resident differently for a full disk."""

from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """The database refused a write or a read; nothing was committed by the failing call."""


class StoreRefused(StoreError):
    """The store must not be used as it is (missing, empty, damaged, another cart's); the
    message tells the operator what to do. Nothing was written."""


class StoreFullError(StoreError):
    """The disk (or the filesystem holding data_dir) is full: new transactions are refused."""


def translate(exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return StoreFullError(f"storage full: {text}")
    return StoreError(f"database error: {text}")
