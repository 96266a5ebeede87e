-- Ordered delivery (CONTRACT section 8, ordering): a webhook with ordering 'fifo' gets its events
-- one at a time in the order they were accepted. See internal/dispatch's package doc, "FIFO
-- endpoints", for the design; this migration adds what it stands on.
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'fifo'));
-- The acceptance order: a sequence value taken by the INSERT of the accepting transaction, so an
-- event whose 201 was sent before another's request has the lower seq. Events from before this
-- migration are numbered in (created_at, id) order.
CREATE SEQUENCE events_seq;
ALTER TABLE events ADD COLUMN seq BIGINT;
UPDATE events SET seq = r.n FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM events) AS r WHERE events.id = r.id;
SELECT setval('events_seq', (SELECT COALESCE(max(seq), 0) + 1 FROM events), false);
ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('events_seq');
ALTER SEQUENCE events_seq OWNED BY events.seq;
-- The lane's gap check reads a survey's events between two lane positions.
CREATE INDEX events_survey_seq_idx ON events (survey_id, seq);
-- The last seq taken when the webhook was created or its events or ordering last changed: the
-- gap check waits only for later events.
ALTER TABLE webhooks ADD COLUMN lane_from_seq BIGINT NOT NULL DEFAULT 0;
-- A delivery in a FIFO lane carries its event's seq; NULL for every other delivery (endpoints
-- without ordering, replays, test sends).
ALTER TABLE deliveries ADD COLUMN lane_seq BIGINT;
-- Lane rows are claimed by the lane's own claim, head first, never by the oldest-due claim:
-- the pending index of migration 070 leaves them out, so that claim's cost stays as it was.
DROP INDEX deliveries_pending_idx;
CREATE INDEX deliveries_pending_idx ON deliveries (webhook_id, next_attempt_at, id) WHERE status = 'pending' AND lane_seq IS NULL;
-- A lane's head: its lowest pending seq.
CREATE INDEX deliveries_lane_pending_idx ON deliveries (webhook_id, lane_seq) WHERE status = 'pending' AND lane_seq IS NOT NULL;
-- A lane's position below its head (the last row done), where the gap check starts.
CREATE INDEX deliveries_lane_idx ON deliveries (webhook_id, lane_seq) WHERE lane_seq IS NOT NULL;
-- The ordering decides how an event is delivered: it moves the webhooks version (migration 060).
DROP TRIGGER webhooks_version_update ON webhooks;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled, signature_scheme, ordering ON webhooks FOR EACH ROW EXECUTE FUNCTION webhooks_version_bump();
