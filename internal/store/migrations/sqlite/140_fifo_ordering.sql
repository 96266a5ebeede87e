-- Ordered delivery: see the PostgreSQL migration of the same number.
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'fifo'));
-- The acceptance order. SQLite has no sequences; one writer at a time makes a counter row,
-- moved by a trigger in the inserting transaction, just as good.
CREATE TABLE events_seq (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
ALTER TABLE events ADD COLUMN seq INTEGER;
UPDATE events SET seq = r.n FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM events) AS r WHERE events.id = r.id;
INSERT INTO events_seq (id, seq) SELECT 1, COALESCE(max(seq), 0) FROM events;
CREATE TRIGGER events_seq_insert AFTER INSERT ON events WHEN NEW.seq IS NULL BEGIN UPDATE events_seq SET seq = seq + 1 WHERE id = 1; UPDATE events SET seq = (SELECT seq FROM events_seq WHERE id = 1) WHERE rowid = NEW.rowid; END;
CREATE INDEX events_survey_seq_idx ON events (survey_id, seq);
ALTER TABLE webhooks ADD COLUMN lane_from_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN lane_seq INTEGER;
DROP INDEX deliveries_pending_idx;
CREATE INDEX deliveries_pending_idx ON deliveries (webhook_id, next_attempt_at, id) WHERE status = 'pending' AND lane_seq IS NULL;
CREATE INDEX deliveries_lane_pending_idx ON deliveries (webhook_id, lane_seq) WHERE status = 'pending' AND lane_seq IS NOT NULL;
CREATE INDEX deliveries_lane_idx ON deliveries (webhook_id, lane_seq) WHERE lane_seq IS NOT NULL;
DROP TRIGGER webhooks_version_update;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled, signature_scheme, ordering ON webhooks BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END;
