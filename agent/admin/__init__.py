"""The admin surface: the `cart-agent` command line, maintenance commands, status and the
local control socket (server and client)."""
