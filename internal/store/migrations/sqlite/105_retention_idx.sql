-- As PostgreSQL's 105: the retention purge's indexes (the SQLite driver names
-- deliveries_expiry_idx with INDEXED BY, so SQLite cannot plan the purge any other way).
CREATE INDEX deliveries_expiry_idx ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX events_expiry_idx ON events (published_at, id) WHERE published_at IS NOT NULL;
