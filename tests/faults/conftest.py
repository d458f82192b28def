from __future__ import annotations

import os

import pytest

LONG = os.environ.get("FAULTS_LONG") == "1"


def scale(short: int, long: int) -> int:
    """Short form in the normal suite; FAULTS_LONG=1 runs the long form."""
    return long if LONG else short


@pytest.fixture
def long_form() -> bool:
    return LONG
