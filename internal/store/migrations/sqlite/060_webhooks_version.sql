-- The webhooks version: see the PostgreSQL migration of the same number for why. SQLite has
-- no trigger functions, so each trigger carries the same one-statement body.
CREATE TABLE webhooks_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO webhooks_version (id, version) VALUES (1, 1);
-- NULL for events accepted before this migration: they are dispatched as before.
ALTER TABLE events ADD COLUMN webhooks_version BIGINT;

CREATE TRIGGER webhooks_version_insert AFTER INSERT ON webhooks BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER webhooks_version_delete AFTER DELETE ON webhooks BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled ON webhooks BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER webhooks_version_survey_update AFTER UPDATE OF jwt_secret ON surveys BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;
