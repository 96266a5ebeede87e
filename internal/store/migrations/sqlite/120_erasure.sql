-- Erasure: see the PostgreSQL migration of the same number for why. The envelope's userId
-- is read with json_extract here.
ALTER TABLE events ADD COLUMN user_id TEXT;
UPDATE events SET user_id = json_extract(payload, '$.userId') WHERE json_extract(payload, '$.userId') IS NOT NULL;
CREATE INDEX events_user_idx ON events (user_id) WHERE user_id IS NOT NULL;
ALTER TABLE events ADD COLUMN erased_at BIGINT;

CREATE TABLE delivery_tombstones (
    survey_id  TEXT NOT NULL,
    since      BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL
);
CREATE INDEX delivery_tombstones_survey_idx ON delivery_tombstones (survey_id, deleted_at);
