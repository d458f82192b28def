"""The transaction store: SQLite, durable before anything happens in the world."""

from agent.store import identity
from agent.store.errors import StoreError, StoreFullError, StoreRefused
from agent.store.transactions import Store, Tx, Writer

__all__ = ["Store", "StoreError", "StoreFullError", "StoreRefused", "Tx", "Writer", "identity"]
