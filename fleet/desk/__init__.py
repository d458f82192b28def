"""The fleet manager's desk: a web dashboard over the ingest's PostgreSQL and the live topics.

Read side: `desk_carts` (folded from the carts' status, telemetry and config topics by
`live`), the ingest's transactions table and what `follow` derives from it (alarms, parcels,
compartments, hourly usage). Write side: alarm acknowledgements and the actions (config
pushes, commands) that go through fleet.operations, each recorded with who did it.
`app` is the composition root; everything else is handed what it needs.
"""
