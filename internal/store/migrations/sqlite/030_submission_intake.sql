-- Survey app intake (submission and outbox). Documents are TEXT here already, kept verbatim.

-- A respondent has at most one open session; concurrent starts cannot both leave one open.
CREATE UNIQUE INDEX survey_sessions_open_idx ON survey_sessions (survey_id, user_id) WHERE status = 'open';
