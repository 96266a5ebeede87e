package delivery

import (
	"slices"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/ids"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// The statuses of a delivery: the store's one status set.
const (
	StatusPending   = store.DeliveryPending
	StatusSucceeded = store.DeliverySucceeded
	StatusFailed    = store.DeliveryFailed
	StatusSkipped   = store.DeliverySkipped
)

// Statuses lists every delivery status.
var Statuses = store.DeliveryStatuses

// ValidStatus reports whether s is a delivery status.
func ValidStatus(s string) bool { return slices.Contains(Statuses, s) }

// ValidType reports whether t is an event type a delivery can carry: a subscribable type or
// webhook.test.
func ValidType(t string) bool { return t == events.TypeWebhookTest || events.ValidType(t) }

// Delivery is one event sent (or to be sent) to one endpoint: the code base's one delivery
// record (see store.Delivery). The API's JSON form is deliveryView.
type Delivery = store.Delivery

// Attempt is one entry of a delivery's attempt log (see store.Attempt).
type Attempt = store.Attempt

// deliveryView is a delivery as the API shows it (CONTRACT section 7).
type deliveryView struct {
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

func viewOf(d *Delivery) deliveryView {
	v := deliveryView{ID: d.ID, EventID: d.EventID, Type: d.Type, SurveyID: d.SurveyID, WebhookID: d.WebhookID,
		URL: d.URL, Status: d.Status, Attempts: d.Attempts, LastError: d.LastError, CreatedAt: d.CreatedAt,
		UpdatedAt: d.UpdatedAt, ReplayOf: d.ReplayOf, ReplayID: d.ReplayID}
	if d.LastStatusCode != 0 {
		c := d.LastStatusCode
		v.LastStatusCode = &c
	}
	if !d.NextAttemptAt.IsZero() {
		t := d.NextAttemptAt
		v.NextAttemptAt = &t
	}
	return v
}

// attemptView is an attempt as the API shows it.
type attemptView struct {
	N          int       `json:"n"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMS int64     `json:"durationMs"`
	// StatusCode is nil when no answer arrived.
	StatusCode *int `json:"statusCode"`
	// Error is the attempt's error code; empty when delivered.
	Error        string `json:"error"`
	ResponseBody string `json:"responseBody"`
}

func attemptViewOf(a *Attempt) attemptView {
	v := attemptView{N: a.N, StartedAt: a.StartedAt, DurationMS: a.Duration.Milliseconds(), Error: a.Error,
		ResponseBody: a.ResponseBody}
	if a.StatusCode != 0 {
		c := a.StatusCode
		v.StatusCode = &c
	}
	return v
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
