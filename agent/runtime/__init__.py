"""The runtime: the composition root (daemon), its supervisor, the wiring of services from
the config, health, systemd and logs. Only the entry (`agent.admin.cli`) imports it."""
