package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/ids"
)

// Event types.
const (
	TypeSessionStarted   = "survey.session.started"
	TypeSessionCancelled = "survey.session.cancelled"
	TypeSessionSubmitted = "survey.session.submitted"
	// TypeWebhookTest is sent by the test route of a webhook endpoint.
	TypeWebhookTest = "webhook.test"
	// TypeWebhookDisabled is an operational event: an endpoint was disabled (its receiver
	// answered 410 Gone, it crossed the failure threshold, or someone disabled it by hand).
	// Its data is WebhookDisabledData.
	TypeWebhookDisabled = "webhook.disabled"
	// TypeDeliveryExhausted is an operational event: a delivery ended failed (its retry
	// schedule ran out, or its failure cannot be retried). Its data is
	// DeliveryExhaustedData.
	TypeDeliveryExhausted = "delivery.exhausted"
)

// Types lists the event types endpoints may subscribe to.
var Types = []string{TypeSessionStarted, TypeSessionCancelled, TypeSessionSubmitted, TypeWebhookDisabled, TypeDeliveryExhausted}

// Operational reports whether t is an operational event type: an event about one of the
// survey's endpoints (its data names it in webhookId), which is never delivered to that
// endpoint itself.
func Operational(t string) bool {
	return t == TypeWebhookDisabled || t == TypeDeliveryExhausted
}

// WebhookDisabledData is the data of a webhook.disabled event.
type WebhookDisabledData struct {
	// WebhookID is the endpoint that was disabled.
	WebhookID string `json:"webhookId"`
	// Reason is why, as the endpoint's disabledReason shows it: "the receiver answered 410
	// Gone", "N consecutive failures since …", or "manual".
	Reason string `json:"reason"`
}

// DeliveryExhaustedData is the data of a delivery.exhausted event.
type DeliveryExhaustedData struct {
	// WebhookID is the endpoint the delivery went to.
	WebhookID string `json:"webhookId"`
	// DeliveryID is the delivery that ended failed (as in /api/admin/deliveries).
	DeliveryID string `json:"deliveryId"`
	// EventID is the event it carried.
	EventID string `json:"eventId"`
	// Attempts is how many attempts were made.
	Attempts int `json:"attempts"`
	// LastError is the last attempt's error code (the delivery's lastError), e.g.
	// "http_error" or "connection_error"; empty when none was recorded.
	LastError string `json:"lastError"`
}

// AboutWebhook returns the endpoint an operational event's envelope is about (its
// data.webhookId); "" for other types or when the envelope does not name one.
func AboutWebhook(eventType string, body []byte) string {
	if !Operational(eventType) {
		return ""
	}
	var e struct {
		Data struct {
			WebhookID string `json:"webhookId"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Data.WebhookID
}

// ValidType reports whether t is an event type endpoints may subscribe to.
func ValidType(t string) bool {
	for _, v := range Types {
		if v == t {
			return true
		}
	}
	return false
}

// Version is the envelope version; it changes only with incompatible changes.
const Version = 1

// Event is the envelope delivered to receivers. Data is the stored submission for
// survey.session.submitted, WebhookDisabledData for webhook.disabled and
// DeliveryExhaustedData for delivery.exhausted, and absent otherwise.
type Event struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Timestamp    time.Time       `json:"timestamp"`
	SurveyID     string          `json:"surveyId"`
	SessionID    string          `json:"sessionId,omitempty"`
	UserID       string          `json:"userId,omitempty"`
	Username     string          `json:"username,omitempty"`
	SubmissionID string          `json:"submissionId,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
}

// NewID returns a new event id: "evt_" and a UUIDv7, so ids sort by creation time.
func NewID() string {
	return ids.New("evt_")
}

// Marshal encodes the envelope as delivered (the exact bytes signed and sent).
func (e *Event) Marshal() ([]byte, error) {
	e.Timestamp = e.Timestamp.UTC().Truncate(time.Millisecond)
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", e.ID, err)
	}
	return b, nil
}

// Subject is the NATS subject of an event of type eventType in surveyID.
func Subject(surveyID, eventType string) string {
	return SubjectPrefix + "." + surveyID + "." + eventType
}
