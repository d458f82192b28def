"""The fleet's time reaches the cart's trusted clock: the reference ingest's acks, a pushed
config and a command each carry `at` (contract section 6), over a real Mosquitto."""

from __future__ import annotations

import time

from agent.clock import TrustedClock
from fleet.client import BrokerOptions
from fleet.operations import push_config, send_command
from tests.support import wait_for
from tests.sync.synckit import CART

DAY = 86_400.0


def test_acks_configs_and_commands_carry_the_fleets_time(broker, make_cart, make_ingest):
    cart = make_cart(broker.port)
    wall_lag = 2 * DAY  # the cart's RTC lost two days; nothing in its store says otherwise
    # A boot clock that stands still: the bound stays at the newest evidence, so each
    # downlink's own time shows in it.
    cart.trusted = TrustedClock(120, wall=lambda: time.time() - wall_lag, mono=lambda: 0.0)
    assert cart.trusted.state().alarm is None  # no evidence yet: the wall clock is believed
    make_ingest(broker.port)
    cart.record(2)
    cart.start()
    cart.wait_online()
    wait_for(lambda: cart.pending() == 0, timeout_s=20, what="the ingest's acks")
    state = wait_for(lambda: (s := cart.trusted.state()).alarm == "behind" and s,
                     what="the ack's time to correct the clock")
    assert state.evidence == "server"
    assert abs(state.now - time.time()) < 30
    assert state.source == "corrected"

    # Each downlink of the fleet tools is evidence on its own, too.
    opts = BrokerOptions(port=broker.port)
    for send in (lambda: push_config(opts, CART, 1, {"log_level": "INFO"}, None),
                 lambda: send_command(opts, CART, "ping", {}, None, 10.0)):
        before = time.time()
        assert cart.trusted.state().bound < before
        send()
        wait_for(lambda since=before: (cart.trusted.state().bound or 0.0) >= since - 1,
                 what="the fleet's time on the downlink")
