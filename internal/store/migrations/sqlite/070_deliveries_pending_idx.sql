-- As PostgreSQL's 070: the retry scheduler's claim walks the endpoints with pending deliveries
-- and takes each one's oldest due rows from this index (named in the claim with INDEXED BY, so
-- SQLite cannot plan it any other way); deliveries_due_idx is no longer read.
CREATE INDEX deliveries_pending_idx ON deliveries (webhook_id, next_attempt_at, id) WHERE status = 'pending';
DROP INDEX deliveries_due_idx;
