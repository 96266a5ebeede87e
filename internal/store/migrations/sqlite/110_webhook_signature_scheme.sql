-- An endpoint's signature scheme: see the PostgreSQL migration of the same number.
ALTER TABLE webhooks ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'v1' CHECK (signature_scheme IN ('v1', 'v1a'));

DROP TRIGGER webhooks_version_update;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled, signature_scheme ON webhooks BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;
