-- A submission's event keeps its envelope without the data, which is the submission's body:
-- see the PostgreSQL migration of the same number.
ALTER TABLE events ADD COLUMN data_submission_id TEXT;

CREATE VIEW event_envelopes AS
SELECT e.id, e.type, e.survey_id, e.subject, e.created_at, e.published_at, e.erased_at,
    CASE WHEN e.data_submission_id IS NULL THEN e.payload
    WHEN e.payload = '{}' THEN '{"data":' || s.body || '}'
    ELSE substr(e.payload, 1, length(e.payload) - 1) || ',"data":' || s.body || '}' END AS payload
FROM events e LEFT JOIN submissions s ON s.id = e.data_submission_id;
