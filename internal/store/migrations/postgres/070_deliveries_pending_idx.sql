-- The retry scheduler's claim (internal/dispatch, claimDue) walks the endpoints that have
-- pending deliveries and takes each one's oldest due rows from this index, so its cost is
-- bounded by the batch it claims and the number of endpoints, not by the backlog. id makes
-- the index's order the claim's order (next_attempt_at, id), so no sort runs per endpoint.
--
-- deliveries_due_idx goes: nothing else reads pending deliveries in next_attempt_at order, and
-- with stale statistics the planner preferred it for the per-endpoint scans, reading the
-- whole backlog of other endpoints for each endpoint (the quadratic claim of issue 10). The
-- pending-retries probe (count of pending deliveries) reads the new index as well.
--
-- Building the index scans deliveries once and blocks writes to it meanwhile, once, when this
-- migration runs.
CREATE INDEX deliveries_pending_idx ON deliveries (webhook_id, next_attempt_at, id) WHERE status = 'pending';
DROP INDEX deliveries_due_idx;
