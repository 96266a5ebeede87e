-- Leases: a named job that one process of many runs at a time (the retention purge of
-- internal/retention). A holder takes a lease until expires_at and renews it while it works;
-- another process may take it once it has expired, so a holder that dies frees it by itself.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
