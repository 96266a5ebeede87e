-- A survey's events are found by events_survey_seq_idx: see the PostgreSQL migration of the same
-- number.
DROP INDEX IF EXISTS events_survey_idx;
