-- events_survey_idx (survey_id, created_at) serves no query since migration 140: a survey's
-- events are found by events_survey_seq_idx (survey_id, seq), whose leading column is the same
-- (the FIFO lane's gap check, deleting a survey), and nothing reads them in created_at order.
-- Every event's insert and its outbox mark (an update that cannot be HOT) paid for it: with it
-- gone, both write one index entry less (issue 15).
DROP INDEX IF EXISTS events_survey_idx;
