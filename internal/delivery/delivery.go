package delivery

import (
	"slices"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/ids"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// The statuses of a delivery.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
)

// Statuses lists every delivery status.
var Statuses = []string{StatusPending, StatusSucceeded, StatusFailed, StatusSkipped}

// ValidStatus reports whether s is a delivery status.
func ValidStatus(s string) bool { return slices.Contains(Statuses, s) }

// ValidType reports whether t is an event type a delivery can carry: a subscribable type or
// webhook.test.
func ValidType(t string) bool { return t == events.TypeWebhookTest || events.ValidType(t) }

// Delivery is one event sent (or to be sent) to one endpoint.
type Delivery struct {
	ID             string     `json:"id"`
	EventID        string     `json:"eventId"`
	Type           string     `json:"type"`
	SurveyID       string     `json:"surveyId"`
	WebhookID      string     `json:"webhookId"`
	URL            string     `json:"url"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"lastStatusCode"`
	LastError      string     `json:"lastError"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	// ReplayOf is the delivery this one replays; empty for a first delivery.
	ReplayOf string `json:"replayOf,omitempty"`
	// ReplayID is the range replay that created this delivery; empty otherwise.
	ReplayID string `json:"replayId,omitempty"`
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

// NewID returns the id of a replay delivery: "dlv_" and the hex of a UUIDv7. First deliveries
// have deterministic ids instead (see DeliveryID).
func NewID() string { return ids.New("dlv_") }

// NewReplayID returns the id of a range replay: "rpl_" and the hex of a UUIDv7.
func NewReplayID() string { return ids.New("rpl_") }

// Scope is what a caller may see: every survey, or the listed ones only.
type Scope struct {
	All     bool
	Surveys []string
}

// ScopeOf returns the scope of a principal: admins see everything, staff their surveys,
// anyone else nothing.
func ScopeOf(p *httpapi.Principal) Scope {
	if p == nil {
		return Scope{}
	}
	all, surveys := p.ManagedSurveys()
	return Scope{All: all, Surveys: surveys}
}

// Allows reports whether the scope covers surveyID.
func (s Scope) Allows(surveyID string) bool {
	return s.All || slices.Contains(s.Surveys, surveyID)
}
