-- An endpoint's rate limit and its token bucket: see the PostgreSQL migration of the same number.
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER CHECK (rate_limit >= 1);

DROP TRIGGER webhooks_version_update;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled, signature_scheme, ordering, rate_limit ON webhooks BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;

CREATE TABLE webhook_rate_tokens (
    webhook_id TEXT PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    tat        INTEGER NOT NULL,
    granted    INTEGER NOT NULL
);
