-- Survey app intake (submission and outbox).
--
-- The outbox payload is the exact envelope receivers get, and a submission keeps the recall's
-- bytes as the respondent sent them. jsonb re-encodes documents (key order, spacing, duplicate
-- keys); json stores its input verbatim and still checks it and answers ->, ->> queries.
ALTER TABLE events ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE submissions ALTER COLUMN body TYPE json USING body::json;
-- Recalls are ~10 KB and each is stored twice (submission, envelope): lz4 compresses them at
-- about half pglz's CPU cost (PostgreSQL 14+, built with lz4 as every packaged build is).
ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
ALTER TABLE submissions ALTER COLUMN body SET COMPRESSION lz4;

-- A respondent has at most one open session; concurrent starts cannot both leave one open.
CREATE UNIQUE INDEX survey_sessions_open_idx ON survey_sessions (survey_id, user_id) WHERE status = 'open';
