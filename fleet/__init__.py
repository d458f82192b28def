"""Fleet-side tools: keys and tokens, pushing config, commands, status, the reference ingest."""
