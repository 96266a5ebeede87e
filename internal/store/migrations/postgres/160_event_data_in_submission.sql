-- A submission's event no longer stores its data twice (issue 15). The envelope's data is the
-- submission's stored body, ~10 KB; the events row keeps the envelope without it and names the
-- submission, and the store joins the two on reading (store.JoinEnvelope). That halves the
-- bytes every submission sends, validates, compresses and writes, and the archive's size.
-- Rows from before keep their whole payload and a NULL data_submission_id.
--
-- No foreign key: submissions outlive events (retention deletes events only), and erasing a
-- respondent clears the column in the transaction that deletes its submissions. Adding a
-- nullable column without a default rewrites nothing.
ALTER TABLE events ADD COLUMN data_submission_id TEXT;

-- Every event with its whole envelope, for operators' queries of the data
-- (SELECT payload->'data'->'recall' FROM event_envelopes WHERE …): events.payload of a
-- submission's event holds the envelope's other fields only.
CREATE VIEW event_envelopes AS
SELECT e.id, e.type, e.survey_id, e.subject, e.created_at, e.published_at, e.erased_at,
    CASE WHEN e.data_submission_id IS NULL THEN e.payload
    WHEN e.payload::text = '{}' THEN ('{"data":' || s.body || '}')::json
    ELSE (left(e.payload::text, -1) || ',"data":' || s.body || '}')::json END AS payload
FROM events e LEFT JOIN submissions s ON s.id = e.data_submission_id;
