"""Fixtures for the fleet-side tests: a real three-node NATS cluster and a private PostgreSQL,
both started here on free loopback ports and torn down after the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nats_cluster import NatsCluster, write_open_accounts
from tests.postgres_cluster import PostgresCluster, postgres_cluster


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(workdir=tmp_path / "nats",
                          accounts_conf=write_open_accounts(tmp_path / "open.conf"))
    try:
        cluster.start()
        cluster.wait_ready()
        cluster.wait_mqtt()
        yield cluster
    finally:
        cluster.close()
