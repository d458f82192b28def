"""A fleet simulator: thousands of lightweight carts speaking the cart's MQTT contract.

A top-level package beside `bench/` rather than inside `fleet/`: it is a tool for tests,
benchmarks and capacity planning, and it starts brokers and databases through the test
helpers (`tests.nats_cluster`, `tests.postgres_cluster`); the `cart-fleet` distribution
that operators install must not carry it.
"""
