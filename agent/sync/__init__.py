"""Sync with the fleet over MQTT: outbox, desired config, commands, presence (CONTRACT.md §4)."""
