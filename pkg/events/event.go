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
)

// Types lists the event types endpoints may subscribe to.
var Types = []string{TypeSessionStarted, TypeSessionCancelled, TypeSessionSubmitted}

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

// Event is the envelope delivered to receivers.
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
