-- Erasure (CONTRACT §8 "Data lifecycle"): deleting a respondent erases the payloads of its
-- events, and deleting a survey deletes its events, deliveries and attempt logs.
--
-- events.user_id names the respondent an event is about (the survey app's session and
-- submission events; NULL for the others), so that a respondent's deletion finds its events
-- through an index instead of reading every payload of the survey. Events from before this
-- migration get it from their envelope's userId, once, when the migration runs (it rewrites
-- the rows that have one, holding their locks meanwhile).
ALTER TABLE events ADD COLUMN user_id TEXT;
UPDATE events SET user_id = payload->>'userId' WHERE payload->>'userId' IS NOT NULL;
CREATE INDEX events_user_idx ON events (user_id) WHERE user_id IS NOT NULL;
-- An erased event keeps its row (its deliveries' log still names it) with payload '{}' and
-- headers '{}'; erased_at says when, and that the payload is gone rather than empty.
ALTER TABLE events ADD COLUMN erased_at BIGINT;

-- Delivery tombstones: one row per deleted survey, covering the times its deliveries could
-- have been created ([since, deleted_at], since being the survey's creation). A delivery id
-- that is not stored but carries a creation time (internal/delivery, DeliveryID) inside one
-- of them, or before the retention horizon, is answered as purged (410 delivery_purged)
-- rather than as never existing; and the engine's result writes skip the deliveries a
-- tombstone covers, so an attempt in flight during the deletion does not bring its delivery
-- back. Rows are a few dozen bytes per deleted survey.
CREATE TABLE delivery_tombstones (
    survey_id  TEXT NOT NULL,
    since      BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL
);
CREATE INDEX delivery_tombstones_survey_idx ON delivery_tombstones (survey_id, deleted_at);
