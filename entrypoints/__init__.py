"""How the world reaches the migration: HTTP API, command line, in-process library."""
