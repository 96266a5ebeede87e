-- The stored submission (submissions.body) becomes text: PostgreSQL's json input function
-- parses every document to check it, which for ~10 KB recalls was about a sixth of the
-- server's CPU per submission, and the recall has been validated in full before it is stored
-- (internal/submission's ParseRecall). Text keeps the bytes as verbatim as json did; queries
-- into a body cast it (body::json ->> 'id').
--
-- events.payload stays json: it is the archive that operators and tools query with ->>.
--
-- Changing the type rewrites the table, holding its lock meanwhile, once, when this
-- migration runs; the column's lz4 compression is set again, since a new type resets it.
ALTER TABLE submissions ALTER COLUMN body TYPE text;
ALTER TABLE submissions ALTER COLUMN body SET COMPRESSION lz4;
