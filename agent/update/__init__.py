"""Software updates on the cart: signed releases fetched, verified, installed side by side,
switched in one step and kept only when the new version proves healthy.

fetch (HTTP range resume), manifest (signature and hashes), install (a new venv per release),
slots (the `current` symlink, the state file, keeping two releases), guard (before every
start: crash loops roll back), gate (after the switch: healthy within a deadline or back),
updater (the job a fleet `update` command leaves, carried through across restarts).
"""
