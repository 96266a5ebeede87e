package delivery

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// ReplayFilter selects the deliveries of a range replay. Its JSON encoding is canonical
// (statuses sorted, times in UTC at microsecond precision), so equal filters have equal keys.
type ReplayFilter struct {
	SurveyID  string    `json:"surveyId,omitempty"`
	WebhookID string    `json:"webhookId,omitempty"`
	Status    []string  `json:"status"`
	Type      string    `json:"type,omitempty"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
}

// ReplayableStatuses are the statuses a range replay may select. Pending deliveries are still
// being attempted; replaying them in bulk would only double the traffic.
var ReplayableStatuses = []string{StatusFailed, StatusSkipped, StatusSucceeded}

// Key returns the canonical form of f, which the store uses to refuse a second running replay
// of the same filter.
func (f ReplayFilter) Key() string {
	b, _ := json.Marshal(f.canonical()) // a struct of strings and times always encodes
	return string(b)
}

func (f ReplayFilter) canonical() ReplayFilter {
	f.Status = slices.Clone(f.Status)
	slices.Sort(f.Status)
	f.Status = slices.Compact(f.Status)
	f.Since = f.Since.UTC().Truncate(time.Microsecond)
	f.Until = f.Until.UTC().Truncate(time.Microsecond)
	return f
}

// replayRequest is the body of POST /api/admin/deliveries/replay. Times are strings so that a
// bad one is reported against its field.
type replayRequest struct {
	SurveyID  string   `json:"surveyId"`
	WebhookID string   `json:"webhookId"`
	Status    []string `json:"status"`
	Type      string   `json:"type"`
	Since     string   `json:"since"`
	Until     string   `json:"until"`
	DryRun    bool     `json:"dryRun"`
}

// ParseReplayRequest reads a range replay body: {"surveyId"?, "webhookId"?, "status"?
// (default ["failed"]), "type"?, "since", "until", "dryRun"?}. since and until are required
// RFC 3339 times with since before until. It returns the canonical filter and whether this is
// a dry run; bad input gives a 400 problem.
func ParseReplayRequest(body []byte) (ReplayFilter, bool, error) {
	var req replayRequest
	if err := httpapi.UnmarshalJSON(body, &req); err != nil {
		return ReplayFilter{}, false, err
	}
	var errs []httpapi.FieldError
	bad := func(field, msg string) { errs = append(errs, httpapi.FieldError{Field: field, Message: msg}) }
	f := ReplayFilter{SurveyID: req.SurveyID, WebhookID: req.WebhookID, Type: req.Type}
	if len(f.SurveyID) > maxIDLength {
		bad("surveyId", "is too long")
	}
	if len(f.WebhookID) > maxIDLength {
		bad("webhookId", "is too long")
	}
	switch {
	case req.Status == nil:
		f.Status = []string{StatusFailed}
	case len(req.Status) == 0:
		bad("status", "must list at least one status")
	default:
		for _, s := range req.Status {
			if !slices.Contains(ReplayableStatuses, s) {
				msg := "each status must be failed, skipped or succeeded"
				if s == StatusPending {
					msg = "pending deliveries are still being attempted and cannot be replayed; use failed, skipped or succeeded"
				}
				bad("status", msg)
				break
			}
			f.Status = append(f.Status, s)
		}
	}
	if f.Type != "" && !ValidType(f.Type) {
		bad("type", "is not an event type")
	}
	var okSince, okUntil bool
	if req.Since == "" {
		bad("since", "is required")
	} else if f.Since, okSince = parseTime(req.Since); !okSince {
		bad("since", "must be an RFC 3339 time such as 2026-11-23T10:15:00Z")
	}
	if req.Until == "" {
		bad("until", "is required")
	} else if f.Until, okUntil = parseTime(req.Until); !okUntil {
		bad("until", "must be an RFC 3339 time such as 2026-11-23T10:15:00Z")
	}
	if okSince && okUntil && !f.Since.Before(f.Until) {
		bad("until", "must be after since")
	}
	if len(errs) > 0 {
		return ReplayFilter{}, false, httpapi.Validation(errs...)
	}
	return f.canonical(), req.DryRun, nil
}
