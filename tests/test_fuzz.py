"""Hypothesis over every parser that takes outside bytes: only the typed errors come out.

The same targets run coverage-guided under atheris (`python -m fuzz`, see fuzz/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.targets import TARGETS

SEEDS = Path(__file__).resolve().parents[1] / "fuzz" / "seeds"


def _seeds(name: str) -> list[bytes]:
    folder = SEEDS / name
    return [p.read_bytes() for p in sorted(folder.iterdir())] if folder.is_dir() else []


@st.composite
def inputs(draw: st.DrawFn, name: str) -> bytes:
    seeds = _seeds(name)
    if seeds and draw(st.booleans()):
        base = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 8))):  # a few byte flips, cuts and inserts
            op = draw(st.sampled_from(["flip", "cut", "insert"]))
            pos = draw(st.integers(0, max(0, len(base) - 1)))
            if op == "flip" and base:
                base[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del base[pos: pos + draw(st.integers(1, 16))]
            else:
                base[pos:pos] = draw(st.binary(max_size=16))
        return bytes(base)
    return draw(st.binary(max_size=600))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_survives_hostile_bytes(name: str) -> None:
    target = TARGETS[name]

    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(inputs(name))
    def check(data: bytes) -> None:
        target(data)

    check()


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    nested = b"[" * 5000 + b"]" * 5000
    for name in ("mqtt_command", "mqtt_ack", "mqtt_desired_config", "token"):
        TARGETS[name](nested)
    from agent import jws

    header = jws.b64url_encode(b'{"alg":"EdDSA","kid":"k1"}')
    deep = jws.b64url_encode(b"[" * 1400 + b"]" * 1400)
    with pytest.raises(jws.JwsError) as info:
        jws.strict_json_object(b"[" * 100_000, "payload")
    assert info.value.reason == "unreadable"
    TARGETS["token"](f"{deep}.{deep}.AAAA".encode())
    TARGETS["token"](f"{header}.{deep}.AAAA".encode())


def test_scan_path_seeds_pass_whole() -> None:
    """Each seed of the whole scan path, unmutated: a signed token whose claims hold a lone
    surrogate once killed the flow thread when its refusal was stored."""
    seeds = _seeds("scan_path")
    assert len(seeds) >= 5
    for seed in seeds:
        TARGETS["scan_path"](seed)
