-- An endpoint's rate limit (CONTRACT section 8, rateLimit): deliveries per second to it, across
-- all dispatchers together; NULL is no limit.
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER CHECK (rate_limit >= 1);

-- A change of the limit decides when an endpoint gets its events: it joins the columns that move
-- the webhooks version (migration 060), so every dispatcher's cached copy follows it.
DROP TRIGGER webhooks_version_update ON webhooks;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled, signature_scheme, ordering, rate_limit ON webhooks FOR EACH ROW EXECUTE FUNCTION webhooks_version_bump();

-- The shared token bucket of a limited endpoint, kept as its theoretical arrival time (GCRA):
-- tat is when the bucket will be full again, in microseconds since the epoch; granted is the
-- last take's grant, stored so that the one UPDATE … RETURNING that takes tokens can answer it.
-- A table of its own, not columns of webhooks: dispatchers write it several times a second per
-- limited endpoint, and those writes must neither wait for the API's row locks on webhooks nor
-- churn the webhooks rows (see store.Webhooks.TakeTokens).
CREATE TABLE webhook_rate_tokens (
    webhook_id TEXT PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    tat        BIGINT NOT NULL,
    granted    INTEGER NOT NULL
);
