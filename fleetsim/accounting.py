"""After a run: what the carts committed against what PostgreSQL holds.

Lost: committed at a cart, not in the database. Twice: one (cart, seq) stored under two ids,
or an id stored twice (the primary key makes the second impossible; counted anyway, so a
schema change that dropped it would show). Gaps: a cart's stored seqs are not 1..N.
Extra: rows no cart of this run committed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

Ledger = dict[str, list[tuple[int, str]]]  # cart -> [(seq, id)] as the cart committed them


@dataclass(frozen=True)
class Account:
    committed: int
    stored: int
    lost: int
    twice: int
    gaps: int
    extra: int

    @property
    def whole(self) -> bool:
        return self.lost == 0 and self.twice == 0 and self.gaps == 0 and self.extra == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "whole": self.whole}


def account(rows: list[tuple[str, int, str]], ledger: Ledger) -> Account:
    """`rows`: (cart, seq, id) as stored."""
    committed = {tx_id: (cart, seq) for cart, entries in ledger.items()
                 for seq, tx_id in entries}
    ids = [r[2] for r in rows]
    by_cart_seq: dict[tuple[str, int], int] = defaultdict(int)
    stored_seqs: dict[str, list[int]] = defaultdict(list)
    for cart, seq, _tx_id in rows:
        by_cart_seq[(cart, seq)] += 1
        stored_seqs[cart].append(seq)
    twice = (len(ids) - len(set(ids))) + sum(n - 1 for n in by_cart_seq.values() if n > 1)
    stored_ids = set(ids)
    lost = sum(1 for tx_id in committed if tx_id not in stored_ids)
    extra = sum(1 for tx_id in stored_ids if tx_id not in committed)
    gaps = sum(1 for seqs in stored_seqs.values()
               if sorted(set(seqs)) != list(range(1, len(set(seqs)) + 1)))
    return Account(committed=len(committed), stored=len(stored_ids), lost=lost, twice=twice,
                   gaps=gaps, extra=extra)


def stored_rows(db_url: str, table: str = "cart_transactions") -> list[tuple[str, int, str]]:
    import psycopg

    with psycopg.connect(db_url) as conn:
        return [(str(c), int(s), str(i)) for c, s, i in
                conn.execute(f"SELECT cart, seq, id FROM {table}").fetchall()]
