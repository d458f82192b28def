"""The demo: the real cart daemon on simulated devices, walked through a day at the cart.

    scripts/demo [--keep]        (or, set up: python -m demo [--keep] [--port PORT])

It lives beside the cart's package, not in it: it needs a checkout (config/demo.toml, the
demo keys) and the fleet tools to issue its QR codes.
"""
