package store

import (
	"context"
	"time"
)

// The signature schemes of a webhook (CONTRACT section 8, signatureScheme).
const (
	// SignatureSchemeV1 signs with the HMAC-SHA256 of a whsec_ secret (the default).
	SignatureSchemeV1 = "v1"
	// SignatureSchemeV1a signs with the Ed25519 signature of a whsk_ signing key.
	SignatureSchemeV1a = "v1a"
)

// The orderings of a webhook (CONTRACT section 8, ordering).
const (
	// OrderingNone delivers events as they come, many at a time (the default).
	OrderingNone = "none"
	// OrderingFIFO delivers events one at a time in the order they were accepted.
	OrderingFIFO = "fifo"
)

// Webhook is one webhook endpoint of a survey, as stored. Secret and PreviousSecret are the
// stored values (sealed by internal/endpoint, which opens them): whsec_ secrets for the scheme
// v1, whsk_ signing keys for v1a, in the same columns and with the same rotation.
type Webhook struct {
	ID          string
	SurveyID    string
	URL         string
	Description string
	// Events are the subscribed event types.
	Events []string
	// SignatureScheme is SignatureSchemeV1 or SignatureSchemeV1a: the kind of Secret, and of
	// the secret the next rotation makes. It changes only with Secret (RotateSecret).
	SignatureScheme string
	Secret          string
	// PreviousSecret is "" when there is none; it signs until PreviousSecretUntil.
	PreviousSecret      string
	PreviousSecretUntil time.Time
	// Ordering is OrderingNone or OrderingFIFO.
	Ordering string

	Disabled       bool
	DisabledReason string
	DisabledAt     time.Time // zero while enabled

	ConsecutiveFailures int
	FirstFailureAt      time.Time // zero while not failing

	// RateLimit is the most deliveries a second to the endpoint, across all dispatchers
	// (TakeTokens); 0 is no limit.
	RateLimit int

	CreatedAt time.Time
	UpdatedAt time.Time
}

// TokenTake asks for rate-limit tokens of a webhook's shared bucket: up to Want (at least 1),
// one every Interval, the bucket holding at most Burst of them (at least 1), at Now.
type TokenTake struct {
	WebhookID string
	Want      int
	Interval  time.Duration
	Burst     int
	Now       time.Time
}

// TokenGrant is the answer to a TokenTake: Granted tokens (0 to Want), each good for one
// delivery now, and when the bucket has its next token after them (NextAt, after Now when
// fewer than Want were granted).
type TokenGrant struct {
	Granted int
	NextAt  time.Time
}

// SurveyWebhooks is a survey's webhooks and its jwtSecret, read in one snapshot with the
// webhooks version: they are right for every event accepted at Version or earlier.
type SurveyWebhooks struct {
	Version int64
	// Found is false when the survey does not exist (then there are no webhooks).
	Found bool
	// JWTSecret is the survey's stored jwtSecret; "" when it has none.
	JWTSecret string
	// Webhooks are the survey's webhooks, oldest first.
	Webhooks []*Webhook
}

// WebhookSecrets are a webhook's stored secrets; PreviousSecret is nil when there is none.
type WebhookSecrets struct {
	ID             string
	Secret         string
	PreviousSecret *string
}

// DisabledWebhook is a webhook that a Disable call disabled.
type DisabledWebhook struct {
	ID       string
	SurveyID string
	Reason   string
}

// FailureCount is one batch's change to a webhook's failure counters: Failures failed attempts
// after the batch's last success (Reset: the batch had one), the first of them at
// FirstFailureAt.
type FailureCount struct {
	WebhookID      string
	Reset          bool
	Failures       int
	FirstFailureAt time.Time
}

// Webhooks runs the queries of the webhooks, webhooks version and webhook rate tokens tables. The
// version is moved by the database's triggers (migrations 060, 110 and 150) on every change of a
// webhook's URL, events, secrets, signature scheme, rate limit or disabled flag, on inserts and deletes, and on a change of a survey's jwt_secret;
// so no method moves it by hand. Reads of the surveys table here are only those a webhook
// query needs in the same statement or transaction (the survey's existence, its jwtSecret).
type Webhooks interface {
	// Create inserts w (its ID, SurveyID, URL, Description, Events, SignatureScheme, Secret,
	// Ordering, Disabled, DisabledReason, ConsecutiveFailures, RateLimit, CreatedAt and UpdatedAt). It returns
	// ErrConflict when the id is taken. The survey must exist: the caller checks it in the same
	// transaction (Surveys.SurveyExists); an unknown survey breaks the foreign key.
	Create(ctx context.Context, w *Webhook) error
	// Get returns the webhook id of surveyID; ErrNotFound when there is none (including when
	// it belongs to another survey).
	Get(ctx context.Context, surveyID, id string) (*Webhook, error)
	// GetForUpdate is Get, locking the row until the end of the transaction (Driver.InTx).
	GetForUpdate(ctx context.Context, surveyID, id string) (*Webhook, error)
	// List returns the webhooks of surveyID, oldest first.
	List(ctx context.Context, surveyID string) ([]*Webhook, error)
	// Update writes w's URL, Events, Description, Ordering, Disabled, DisabledReason, DisabledAt,
	// ConsecutiveFailures, FirstFailureAt, RateLimit and UpdatedAt (not the secrets nor the scheme: see
	// RotateSecret); ErrNotFound when there is no such
	// webhook of w.SurveyID. It moves the webhooks version whatever changed. A change of Events
	// or Ordering also restarts the FIFO lane's gap check at the events accepted from then on
	// (see internal/dispatch, "FIFO endpoints").
	Update(ctx context.Context, w *Webhook) error
	// Delete removes the webhook id of surveyID; ErrNotFound when there is none.
	Delete(ctx context.Context, surveyID, id string) error
	// RotateSecret moves the webhook's secret to its previous secret, signing until until, and
	// makes secret (stored as given) of scheme the current one, and returns the webhook as
	// changed; ErrNotFound when there is no such webhook. A scheme other than the webhook's
	// switches it: the previous secret, of the old scheme, still signs until until.
	RotateSecret(ctx context.Context, surveyID, id, scheme, secret string, until, now time.Time) (*Webhook, error)
	// LoadSurvey reads the webhooks version, the survey and its webhooks in one statement.
	LoadSurvey(ctx context.Context, surveyID string) (*SurveyWebhooks, error)
	// Version returns the webhooks version.
	Version(ctx context.Context) (int64, error)
	// StaleSecrets returns the webhooks with a secret or previous secret that does not start
	// with sealedPrefix.
	StaleSecrets(ctx context.Context, sealedPrefix string) ([]WebhookSecrets, error)
	// ReplaceSecret sets the webhook's secret (previous false) or previous secret to value if
	// it is still old, and reports whether it did.
	ReplaceSecret(ctx context.Context, id string, previous bool, old, value string) (bool, error)
	// Disable disables the webhook id with reason at now and returns it; nil when there is no
	// such webhook or it is disabled already.
	Disable(ctx context.Context, id, reason string, now time.Time) (*DisabledWebhook, error)
	// CountFailures applies the dispatch engine's failure counts: a reset sets the counters to
	// the failures after it, otherwise they add up; no failures clear FirstFailureAt. It does
	// not move the webhooks version.
	CountFailures(ctx context.Context, counts []FailureCount) error
	// DisableFailing disables, among ids, the enabled webhooks with at least threshold
	// consecutive failures, the first of them at or before since, and returns them.
	DisableFailing(ctx context.Context, ids []string, threshold int, since, now time.Time) ([]DisabledWebhook, error)
	// TakeTokens takes up to t.Want tokens of the webhook's rate-limit bucket (table
	// webhook_rate_tokens) in one atomic statement, creating the bucket full when it has none.
	// The bucket is a GCRA: it fills by one token every t.Interval up to t.Burst, so over any
	// span s it grants at most t.Burst + s/t.Interval tokens whoever takes them, as long as the
	// takers' clocks agree. A webhook that does not exist gets an error (the foreign key).
	TakeTokens(ctx context.Context, t TokenTake) (TokenGrant, error)
}
