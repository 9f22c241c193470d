"""Server wiring: options (flags → settings → complete) and the running server (new)."""
