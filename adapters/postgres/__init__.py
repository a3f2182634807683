"""PostgreSQL (aiopg, psycopg2): the source, its plan and types, the change cursor, CDC."""
