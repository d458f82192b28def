"""The cart's two screens, served by the daemon: the resident display and the attendant
console (bottle on the stdlib's threaded wsgiref server; see `server.WebService`)."""
