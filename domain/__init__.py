"""The migration's own rules: users, validation, conversion to DynamoDB items, batch planning.

Nothing in this package does I/O or imports a driver; the ports describe what it needs from the
outside world and the adapters provide it.
"""
