-- The webhooks version: a counter that every change to what a delivery depends on moves
-- forward, in the transaction of that change. An event records the version it was accepted
-- at (events.webhooks_version, read by the accepting transaction), and a dispatcher fans it
-- out only with endpoints it read at that version or later (internal/dispatch), so a webhook
-- created, changed or disabled before an event was accepted is always seen by it, whatever
-- the caches and the hosts' clocks.
--
-- One counter for all surveys, not one per survey: a survey deleted and created again under
-- the same id must not start counting from zero while a dispatcher still holds the old
-- survey's endpoints. Webhook changes are rare next to events, so the occasional reload of
-- other surveys' endpoints that a shared counter causes costs little.
--
-- Triggers move it, so that no writer can forget to: the API's create, PATCH, DELETE and
-- rotation, the dispatcher's automatic disabling, the cascade of a survey's deletion, and an
-- operator's SQL alike. The failure counters, which the dispatcher updates all the time, are
-- left out. A column that changes which endpoints get an event, or how it is signed, must be
-- added to webhooks_version_update. Each body stays on one line (see store.splitStatements).
CREATE TABLE webhooks_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO webhooks_version (id, version) VALUES (1, 1);
-- NULL for events accepted before this migration: they are dispatched as before.
ALTER TABLE events ADD COLUMN webhooks_version BIGINT;

-- Inserts and deletes move it once per statement, after the statement has taken all its rows,
-- so that a survey's deletion (which cascades to its webhooks) never holds the counter while
-- it waits for a webhook row that a dispatcher's transaction holds. Updates move it per row:
-- PostgreSQL allows a column list only there, and without one every failure-counter update
-- would run the trigger.
CREATE FUNCTION webhooks_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$;
CREATE FUNCTION webhooks_version_bump_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM changed) THEN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END IF; RETURN NULL; END $$;
CREATE TRIGGER webhooks_version_insert AFTER INSERT ON webhooks REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION webhooks_version_bump_changed();
CREATE TRIGGER webhooks_version_delete AFTER DELETE ON webhooks REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION webhooks_version_bump_changed();
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled ON webhooks FOR EACH ROW EXECUTE FUNCTION webhooks_version_bump();
CREATE TRIGGER webhooks_version_survey_update AFTER UPDATE OF jwt_secret ON surveys FOR EACH ROW EXECUTE FUNCTION webhooks_version_bump();
