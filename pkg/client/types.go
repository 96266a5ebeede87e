package client

import (
	"encoding/json"
	"strconv"
	"time"
)

// The statuses of a delivery.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
)

// Statuses are every delivery status, the values a listing's Status filter takes.
var Statuses = []string{StatusPending, StatusSucceeded, StatusFailed, StatusSkipped}

// ReplayableStatuses are the statuses a range replay may select: pending deliveries are still
// being attempted.
var ReplayableStatuses = []string{StatusFailed, StatusSkipped, StatusSucceeded}

// The statuses of a range replay.
const (
	ReplayRunning   = "running"
	ReplayCompleted = "completed"
	ReplayFailed    = "failed"
)

// Tokens are the answer to a sign-in.
type Tokens struct {
	// RefreshToken is traded for access tokens with Refresh, and ended with SignOut.
	RefreshToken string `json:"refreshToken"`
}

// PersonalAccessToken is a long-lived token of a global account, for programs.
type PersonalAccessToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	// Token is set in the answer to CreatePersonalAccessToken only.
	Token string `json:"token,omitempty"`
}

// The signature schemes of a webhook (Webhook.SignatureScheme).
const (
	// SchemeV1 signs with the HMAC-SHA256 of a whsec_ secret the receiver holds (the default).
	SchemeV1 = "v1"
	// SchemeV1a signs with Ed25519; the receiver holds only the whpk_ public key.
	SchemeV1a = "v1a"
)

// The orderings of a webhook (Webhook.Ordering).
const (
	// OrderingNone sends events as they come, many at a time (the default).
	OrderingNone = "none"
	// OrderingFIFO sends events one at a time in the order they were accepted.
	OrderingFIFO = "fifo"
)

// Webhook is an endpoint of a survey, as the API shows it: without its secret.
type Webhook struct {
	ID              string   `json:"id"`
	SurveyID        string   `json:"surveyId"`
	URL             string   `json:"url"`
	Events          []string `json:"events"`
	Description     string   `json:"description"`
	SignatureScheme string   `json:"signatureScheme"`
	// Ordering is OrderingNone or OrderingFIFO.
	Ordering string `json:"ordering"`
	// PublicKey is a v1a webhook's whpk_ public key, which verifies its deliveries
	// (pkg/webhook's VerifierConfig.PublicKeys); empty for v1.
	PublicKey           string     `json:"publicKey,omitempty"`
	Disabled            bool       `json:"disabled"`
	DisabledReason      string     `json:"disabledReason"`
	DisabledAt          *time.Time `json:"disabledAt"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	// RateLimit is the most deliveries a second to the webhook, across all dispatchers; nil
	// is no limit.
	RateLimit           *int       `json:"rateLimit"`
	SecretRotating      bool       `json:"secretRotating"`
	SecretRotatingUntil *time.Time `json:"secretRotatingUntil"`
	CreatedAt           time.Time  `json:"createdAt"`
	UpdatedAt           time.Time  `json:"updatedAt"`
}

// CreatedWebhook is the answer to CreateWebhook: the webhook and, for v1, its signing secret,
// shown this once (a v1a webhook shows its PublicKey instead).
type CreatedWebhook struct {
	Webhook
	Secret string `json:"secret,omitempty"`
}

// UpdatedWebhook is the answer to UpdateWebhook. A patch that switched the signature scheme
// rotated the secret: Secret is the new v1 secret (a v1a webhook shows its new PublicKey), and
// the old secret signs as well until PreviousSecretExpiresAt.
type UpdatedWebhook struct {
	Webhook
	Secret                  string     `json:"secret,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
}

// NewWebhook is what CreateWebhook registers.
type NewWebhook struct {
	// URL receives the deliveries. Required.
	URL string `json:"url"`
	// Events are the event types to deliver; nil means survey.session.submitted.
	Events      []string `json:"events,omitempty"`
	Description string   `json:"description,omitempty"`
	// SignatureScheme is SchemeV1 (the default when empty) or SchemeV1a.
	SignatureScheme string `json:"signatureScheme,omitempty"`
	// RateLimit limits the deliveries a second to the webhook (1 to 100,000); nil is no limit.
	RateLimit *int `json:"rateLimit,omitempty"`
	// Ordering is OrderingNone (the default when empty) or OrderingFIFO.
	Ordering string `json:"ordering,omitempty"`
}

// WebhookPatch changes the fields that are set (non-nil).
type WebhookPatch struct {
	URL         *string  `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Description *string  `json:"description,omitempty"`
	Disabled    *bool    `json:"disabled,omitempty"`
	// SignatureScheme, when it differs from the webhook's, switches the scheme: a rotation to
	// a secret of the new scheme.
	SignatureScheme *string `json:"signatureScheme,omitempty"`
	// Ordering sets the webhook's ordering (OrderingNone or OrderingFIFO).
	Ordering *string `json:"ordering,omitempty"`
	// RateLimit sets the deliveries a second; a pointer to 0 removes the limit (sent as null).
	RateLimit *int `json:"-"`
}

// MarshalJSON writes p's fields that are set, RateLimit as a number or, for 0, null.
func (p WebhookPatch) MarshalJSON() ([]byte, error) {
	type fields WebhookPatch // without this method
	out := struct {
		fields
		RateLimit json.RawMessage `json:"rateLimit,omitempty"`
	}{fields: fields(p)}
	if p.RateLimit != nil {
		out.RateLimit = json.RawMessage("null")
		if *p.RateLimit != 0 {
			out.RateLimit = json.RawMessage(strconv.Itoa(*p.RateLimit))
		}
	}
	return json.Marshal(out)
}

// RotatedSecret is the answer to RotateSecret: the new v1 secret, or the public key of the new
// v1a signing key.
type RotatedSecret struct {
	Secret    string `json:"secret,omitempty"`
	PublicKey string `json:"publicKey,omitempty"`
	// PreviousSecretExpiresAt is when the rotated-out secret stops signing.
	PreviousSecretExpiresAt time.Time `json:"previousSecretExpiresAt"`
}

// TestSend is the outcome of a webhook's test send.
type TestSend struct {
	DeliveryID   string `json:"deliveryId"`
	EventID      string `json:"eventId"`
	Delivered    bool   `json:"delivered"`
	StatusCode   *int   `json:"statusCode"`
	DurationMS   int64  `json:"durationMs"`
	Error        string `json:"error"`
	Detail       string `json:"detail,omitempty"`
	ResponseBody string `json:"responseBody"`
}

// Delivery is one event sent, or to be sent, to one webhook.
type Delivery struct {
	ID        string `json:"id"`
	EventID   string `json:"eventId"`
	Type      string `json:"type"`
	SurveyID  string `json:"surveyId"`
	WebhookID string `json:"webhookId"`
	URL       string `json:"url"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	// LastStatusCode is nil until an attempt got an answer.
	LastStatusCode *int       `json:"lastStatusCode"`
	LastError      string     `json:"lastError"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	// ReplayOf is the delivery this one replays; empty for a first delivery.
	ReplayOf string `json:"replayOf,omitempty"`
	// ReplayID is the range replay that made this delivery; empty otherwise.
	ReplayID string `json:"replayId,omitempty"`
	// AttemptLog is filled by GetDelivery only.
	AttemptLog []Attempt `json:"attemptLog,omitempty"`
}

// Attempt is one entry of a delivery's attempt log.
type Attempt struct {
	N          int       `json:"n"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMS int64     `json:"durationMs"`
	// StatusCode is nil when no answer arrived.
	StatusCode *int `json:"statusCode"`
	// Error is the attempt's error code; empty when delivered.
	Error        string `json:"error"`
	ResponseBody string `json:"responseBody"`
}

// DeliveryFilter selects deliveries to list. Zero fields do not filter.
type DeliveryFilter struct {
	SurveyID  string
	WebhookID string
	// Status: any of Statuses.
	Status []string
	Type   string
	// Since (inclusive) and Until (exclusive) bound createdAt.
	Since, Until time.Time
	// Limit is the page size, 1 to 500; zero: the API's default (50).
	Limit int
	// Cursor continues after a page: its NextCursor.
	Cursor string
}

// DeliveryPage is one page of a listing, newest first.
type DeliveryPage struct {
	Items []Delivery `json:"items"`
	// NextCursor continues the listing; empty on the last page.
	NextCursor string `json:"-"`
}

// ReplayedDelivery is the answer to ReplayDelivery.
type ReplayedDelivery struct {
	// DeliveryID is the new delivery.
	DeliveryID string `json:"deliveryId"`
	ReplayOf   string `json:"replayOf"`
}

// ReplayRange asks for the deliveries created in [Since, Until) with the chosen statuses to
// be delivered again, each as a new delivery.
type ReplayRange struct {
	SurveyID  string `json:"surveyId,omitempty"`
	WebhookID string `json:"webhookId,omitempty"`
	// Status: any of ReplayableStatuses; nil means failed.
	Status []string  `json:"status,omitempty"`
	Type   string    `json:"type,omitempty"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// DryRun counts what would be replayed and changes nothing.
	DryRun bool `json:"dryRun"`
}

// ReplayStarted is the answer to StartReplay.
type ReplayStarted struct {
	// ReplayID follows the replay with GetReplay; empty for a dry run.
	ReplayID string `json:"replayId"`
	Matched  int64  `json:"matched"`
	DryRun   bool   `json:"dryRun"`
}

// Replay is a range replay's progress.
type Replay struct {
	ID string `json:"id"`
	// Matched is how many deliveries the range selected; Enqueued how many replays are in;
	// Done how many of those are no longer pending, Succeeded and Failed how they ended (the
	// rest of Done were skipped).
	Matched   int64  `json:"matched"`
	Enqueued  int64  `json:"enqueued"`
	Done      int64  `json:"done"`
	Succeeded int64  `json:"succeeded"`
	Failed    int64  `json:"failed"`
	Status    string `json:"status"`
	// Error says why a failed replay failed.
	Error     string      `json:"error,omitempty"`
	Filter    ReplayScope `json:"filter"`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
}

// ReplayScope is the filter a range replay was started with.
type ReplayScope struct {
	SurveyID  string    `json:"surveyId,omitempty"`
	WebhookID string    `json:"webhookId,omitempty"`
	Status    []string  `json:"status"`
	Type      string    `json:"type,omitempty"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
}
