"""The pushed config layers the store keeps (`config_versions`): which are in effect.

Two scopes lie over the cart's file: "fleet" (every cart) and "cart" (this cart, wins). The
layer in effect for a scope is its highest version whose state is 'applied'.
"""

from __future__ import annotations

import json
from typing import Any

from agent.store.transactions import Store

Layer = tuple[int, dict[str, Any]]  # version, document


def applied_layers(store: Store, without: tuple[str, int] | None = None) -> dict[str, Layer]:
    """The layer in effect per scope; `without` (scope, version) leaves that one out, as a
    rollback will."""
    rows = store.query(
        "SELECT scope, version, document FROM config_versions WHERE state = 'applied' "
        "ORDER BY scope, version")
    out: dict[str, Layer] = {}
    for r in rows:
        if without is not None and (r["scope"], int(r["version"])) == without:
            continue
        out[r["scope"]] = (int(r["version"]), json.loads(r["document"]))
    return out


def config_versions(store: Store) -> dict[str, int | None]:
    layers = applied_layers(store)
    return {"config_version": layers["cart"][0] if "cart" in layers else None,
            "fleet_config_version": layers["fleet"][0] if "fleet" in layers else None}
