package store

import (
	"context"
	"time"
)

// Submissions runs the queries of the submissions and survey_sessions tables: the intake of
// internal/submission. Its batch commit also writes the events of the submissions it creates
// (the events table, see Events) and reads their respondents (see Submitters), so that a
// batch commits in the fewest round trips.
type Submissions interface {
	// Submitters reads the named respondents with their surveys' redirect settings and the
	// webhooks version, in one query. Respondents (or surveys) that are gone are missing from
	// the map.
	Submitters(ctx context.Context, keys []SubmitterKey) (map[SubmitterKey]*Submitter, error)
	// CommitReadsSubmitters reports whether Commit had better read the batch's submitters
	// itself: true where that costs no round trip (PostgreSQL sends the read with the INSERT),
	// false where the caller should read each one first with Submitters, concurrently and
	// outside the single writer's turn (SQLite). Commit reads those left nil either way.
	CommitReadsSubmitters() bool
	// Commit writes a batch of submissions in one transaction (see SubmissionBatch).
	Commit(ctx context.Context, b *SubmissionBatch) error
	// ConcurrentCommits reports whether several Commits can usefully run at once: false
	// where the database has a single writer (SQLite).
	ConcurrentCommits() bool

	// OpenSession stores a new open session of the respondent.
	OpenSession(ctx context.Context, id, surveyID, userID string, now time.Time) error
	// CancelOpenSessions cancels the respondent's open sessions and returns their ids.
	CancelOpenSessions(ctx context.Context, surveyID, userID string, now time.Time) ([]string, error)
	// DeleteSurvey deletes every submission and session of a survey (its deletion; the
	// schema's cascade would too, this does not rely on it) and returns how many submissions.
	DeleteSurvey(ctx context.Context, surveyID string) (int64, error)
	// DeleteRespondent deletes every submission and session of respondent userID of a survey
	// (its deletion) and returns how many submissions.
	DeleteRespondent(ctx context.Context, surveyID, userID string) (int64, error)
}

// Session statuses (survey_sessions.status).
const (
	SessionOpen      = "open"
	SessionCancelled = "cancelled"
	SessionSubmitted = "submitted"
)

// Submission is one stored submission.
type Submission struct {
	ID       string
	SurveyID string
	UserID   string
	// SessionID is the session it submits ("": none); an open session of the respondent with
	// this id is closed by the commit.
	SessionID string
	// IdempotencyKey is the request's Idempotency-Key ("": none).
	IdempotencyKey string
	// Body is the stored submission (JSON).
	Body        []byte
	SubmittedAt time.Time
}

// SubmitterKey names a respondent of a survey.
type SubmitterKey struct{ SurveyID, UserID string }

// Submitter is what a submission needs to know about its respondent: whether it may submit,
// the survey's redirect settings and the values a redirect URL is filled from.
type Submitter struct {
	RedirectURL        string
	RedirectIdentifier string
	Username           string
	AuthToken          string
	CustomFields       []byte // a JSON object
	Disabled           bool
	// WebhooksVersion is the store's webhooks version when the respondent was read: the
	// events of its submissions carry it, so that every webhook change that answered before
	// the submission was read applies to them.
	WebhooksVersion int64
}

// SubmissionBatch is one group commit of submissions. In one transaction, Commit:
//   - reads the submitters of the items whose Submitter is nil and asks Admit about each such
//     item, leaving out the ones it refuses (their Err is set);
//   - inserts the submissions, skipping any that repeat an earlier one of the respondent (same
//     idempotency key or session); an item that repeats one gets that submission's id, and
//     an item that was skipped while nothing explains it fails the whole batch;
//   - stores the Event of every created submission, with the webhooks version of its
//     Submitter, claimed until EventsClaimedUntil;
//   - closes the open sessions the created submissions name.
//
// The batch is committed when Commit returns nil; otherwise nothing of it is.
type SubmissionBatch struct {
	Items []SubmissionItem
	// EventsClaimedUntil is the lease of the events written (the zero time: none).
	EventsClaimedUntil time.Time
	// Admit decides whether a submitter read by Commit may submit (nil: it is gone); an
	// error refuses its items. Nil Admit refuses only the submitters that are gone, with
	// ErrNotFound.
	Admit func(s *Submitter) error
}

// SubmissionItem is one submission of a SubmissionBatch, with its results.
type SubmissionItem struct {
	Submission Submission
	// Event is the submission's event, stored when the submission is created. Commit sets
	// its WebhooksVersion from Submitter.
	Event Event
	// Submitter is the respondent, as the caller read it or (when nil) as Commit reads it.
	Submitter *Submitter

	// Set by Commit: whether this item created its submission, and the id it answers with
	// (its own, or the one of the earlier submission it repeats).
	Created  bool
	ResultID string
	// Err is Admit's refusal of this item, which then is not written.
	Err error
}
