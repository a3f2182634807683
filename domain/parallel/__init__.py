"""Segments, leases and the leased workers that share a table between machines."""
