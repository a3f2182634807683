"""Changes after the backfill: polling by a cursor, the logical stream, the rows a change carries."""
