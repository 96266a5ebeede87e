// Package submission is the survey app's side of Dispatch24 (CONTRACT section 5): a
// respondent starts and cancels sessions and submits recalls, and each of those becomes a
// survey event, stored in the outbox in the same transaction as the change it reports, so
// that it is never lost (internal/outbox publishes it).
//
// # Routes
//
//	POST   /api/surveys/{surveyId}/session     201 {"sessionId"}               survey.session.started
//	DELETE /api/surveys/{surveyId}/session     204, 404 when none is open      survey.session.cancelled
//	POST   /api/surveys/{surveyId}/submission  201 {"submissionId","followUpUrl"?}  survey.session.submitted
//
// All are for respondents of {surveyId} only (the router's SurveyRespondent policy): anyone
// else gets 404. A respondent deleted or disabled after its token was issued gets 404 or 403.
//
// Choices where the contract is silent:
//
//   - A respondent has at most one open session. Starting a session while one is open
//     cancels the open one (with its survey.session.cancelled event) before opening the new
//     one. A submission whose sessionId names the respondent's open session closes it.
//   - The recall is validated in one pass (ParseRecall) and stored byte for byte. Known keys
//     match exactly and may appear once; a meal's "time" may be a string or an object.
//     Fields the contract does not name are kept as they are.
//   - The stored submission — submissions.body, and the event's data — is
//     {"id","surveyId","userId","submissionTime","recall"} with the recall nested as sent,
//     so no field of the recall can collide with the service's own.
//   - Idempotency: the same Idempotency-Key (1–255 visible ASCII characters), or the same
//     sessionId, from the same respondent returns the first submission's id with 201 and the
//     same body, and stores nothing. Keys are scoped to the respondent.
//
// # Group commit
//
// Submissions arriving together are written together: one transaction per batch inserts
// the submissions (INSERT … ON CONFLICT DO NOTHING, so the unique constraints on key and
// session decide repeats, also across replicas), their events and the sessions they close,
// and every submitter answers 201 only after that commit. Repeats inside a batch follow the
// first; a batch that fails is retried one submission at a time. The store writes a batch
// in one call (store.Submissions.Commit): PostgreSQL pipelines its statements into two round
// trips, and the sessions a batch closes are closed by one UPDATE.
//
// The server's cost of a batch is mostly per statement and per transaction, not per row, so
// batches are kept big: a writer beyond the first (Config.Writers) starts only when several
// submissions are waiting; otherwise they wait for the running writer's next batch.
package submission
