-- The source table the migration reads. Columns are nullable on purpose: real source data is
-- dirty, and the migration reports what it cannot move instead of refusing to read it.
CREATE TABLE IF NOT EXISTS users (
    id           BIGINT PRIMARY KEY,
    username     TEXT,
    email        TEXT,
    display_name TEXT,
    status       TEXT NOT NULL DEFAULT 'active',
    created_at   TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ,
    profile      JSONB
);
