-- Range replays enqueue their deliveries in batches, each batch in its own short transaction.
-- The keyset cursor (the last replayed delivery's created_at and id) is saved with every batch,
-- so a replay interrupted by a stop resumes where it left off instead of starting again.
ALTER TABLE replays ADD COLUMN cursor_created_at BIGINT;
ALTER TABLE replays ADD COLUMN cursor_id TEXT NOT NULL DEFAULT '';
-- Set once every matching delivery has been enqueued; NULL while batches remain.
ALTER TABLE replays ADD COLUMN enqueued_at BIGINT;
-- Why a replay failed (status = 'failed'); empty otherwise.
ALTER TABLE replays ADD COLUMN error TEXT NOT NULL DEFAULT '';

-- Range replays skip deliveries that were replayed already (a later delivery has replay_of
-- pointing at them), so that replaying a range twice sends each event once more, not twice.
CREATE INDEX deliveries_replay_of_idx ON deliveries (replay_of) WHERE replay_of IS NOT NULL;
