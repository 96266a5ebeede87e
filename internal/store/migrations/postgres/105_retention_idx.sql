-- The retention purge (internal/retention) deletes the deliveries whose last activity is older
-- than RETENTION, oldest first, and the published events older than that. Each batch reads
-- the oldest rows of these indexes, so its cost is the batch, not the table, and the plan does
-- not depend on statistics: an ORDER BY … LIMIT that an index delivers in order.
--
-- Pending deliveries are never purged and stay out of deliveries_expiry_idx. Deliveries move
-- out of pending by updates that already cannot be HOT (deliveries_pending_idx's predicate
-- reads status), so the new index adds one index entry per finished delivery. Likewise
-- events_expiry_idx gets one entry per event, at the publish mark, which already rewrites the
-- row's index entries (events_unpublished_idx's predicate reads published_at).
--
-- Building the indexes scans both tables once and blocks writes to them meanwhile, once, when
-- this migration runs.
CREATE INDEX deliveries_expiry_idx ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX events_expiry_idx ON events (published_at, id) WHERE published_at IS NOT NULL;
