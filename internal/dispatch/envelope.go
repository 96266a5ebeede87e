package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dispatch24/dispatch24/pkg/events"
)

// errInvalidEnvelope marks a message whose body is not an event envelope. Redelivering it
// cannot help, so its message is terminated.
var errInvalidEnvelope = errors.New("invalid event envelope")

// envelope holds the fields of an event the engine needs: routing and the JWT claims. The
// recall in data is never decoded.
type envelope struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	SurveyID     string `json:"surveyId"`
	SessionID    string `json:"sessionId"`
	UserID       string `json:"userId"`
	Username     string `json:"username"`
	SubmissionID string `json:"submissionId"`
}

// decodeEnvelope decodes body, an events.Event as JSON. subject and eventType, from the NATS
// message, fill in and must agree with the envelope's surveyId and type when given; empty
// strings skip that check (a retry read from the store has only the body).
func decodeEnvelope(body []byte, subject, eventType string) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("%w: %w", errInvalidEnvelope, err)
	}
	if e.ID == "" {
		return e, fmt.Errorf("%w: no id", errInvalidEnvelope)
	}
	if eventType != "" {
		if e.Type == "" {
			e.Type = eventType
		} else if e.Type != eventType {
			return e, fmt.Errorf("%w: type %q, header says %q", errInvalidEnvelope, e.Type, eventType)
		}
	}
	if e.Type == "" {
		return e, fmt.Errorf("%w: no type", errInvalidEnvelope)
	}
	if subject != "" {
		survey, ok := surveyFromSubject(subject, e.Type)
		switch {
		case !ok:
			return e, fmt.Errorf("%w: subject %q does not end in the type %q", errInvalidEnvelope, subject, e.Type)
		case e.SurveyID == "":
			e.SurveyID = survey
		case e.SurveyID != survey:
			return e, fmt.Errorf("%w: surveyId %q, subject says %q", errInvalidEnvelope, e.SurveyID, survey)
		}
	}
	if e.SurveyID == "" {
		return e, fmt.Errorf("%w: no surveyId", errInvalidEnvelope)
	}
	return e, nil
}

// surveyFromSubject returns the survey of subject "<prefix>.<surveyId>.<type>".
func surveyFromSubject(subject, eventType string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, events.SubjectPrefix+".")
	if !ok {
		return "", false
	}
	survey, ok := strings.CutSuffix(rest, "."+eventType)
	if !ok || survey == "" {
		return "", false
	}
	return survey, true
}
