package delivery

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// Page sizes of the deliveries list.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// maxIDLength bounds the ids accepted in filters; longer ones cannot exist.
const maxIDLength = 256

// ListQuery filters and pages the deliveries list. Zero fields do not filter.
type ListQuery struct {
	SurveyID  string
	WebhookID string
	Status    []string
	Type      string
	// Since (inclusive) and Until (exclusive) bound createdAt.
	Since time.Time
	Until time.Time
	// After continues a listing after this delivery (newest first); nil starts at the newest.
	After *Cursor
	Limit int
}

// Cursor is a position in the newest-first listing: the last delivery of a page.
type Cursor struct {
	CreatedAt int64 // microseconds, as stored
	ID        string
}

// Encode returns the cursor as the opaque string clients pass back.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1|" + strconv.FormatInt(c.CreatedAt, 10) + "|" + c.ID))
}

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (Cursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, false
	}
	rest, ok := strings.CutPrefix(string(raw), "v1|")
	if !ok {
		return Cursor{}, false
	}
	us, id, ok := strings.Cut(rest, "|")
	// The id goes to the store: NUL or invalid UTF-8 would be a 500 there, not a bad cursor.
	if !ok || id == "" || len(id) > maxIDLength || !httpapi.ValidText(id) {
		return Cursor{}, false
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return Cursor{}, false
	}
	return Cursor{CreatedAt: n, ID: id}, true
}

// ParseListQuery reads the deliveries list's query parameters: surveyId, webhookId, status
// (repeated or comma-separated), type, since and until (RFC 3339), cursor and limit. Bad
// values give a 400 validation_failed problem naming each bad parameter.
func ParseListQuery(v url.Values) (ListQuery, error) {
	q := ListQuery{Limit: DefaultLimit}
	var errs []httpapi.FieldError
	bad := func(field, msg string) { errs = append(errs, httpapi.FieldError{Field: field, Message: msg}) }

	q.SurveyID = v.Get("surveyId")
	if len(q.SurveyID) > maxIDLength {
		bad("surveyId", "is too long")
	}
	q.WebhookID = v.Get("webhookId")
	if len(q.WebhookID) > maxIDLength {
		bad("webhookId", "is too long")
	}
	badStatus := false
	for _, value := range v["status"] {
		for s := range strings.SplitSeq(value, ",") {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
			case !ValidStatus(s):
				badStatus = true
			case !slices.Contains(q.Status, s):
				q.Status = append(q.Status, s)
			}
		}
	}
	if badStatus {
		bad("status", "must be one of "+strings.Join(Statuses, ", "))
	}
	if t := v.Get("type"); t != "" {
		if ValidType(t) {
			q.Type = t
		} else {
			bad("type", "is not an event type")
		}
	}
	var ok bool
	if s := v.Get("since"); s != "" {
		if q.Since, ok = parseTime(s); !ok {
			bad("since", "must be an RFC 3339 time such as 2026-11-23T10:15:00Z")
		}
	}
	if s := v.Get("until"); s != "" {
		if q.Until, ok = parseTime(s); !ok {
			bad("until", "must be an RFC 3339 time such as 2026-11-23T10:15:00Z")
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		bad("until", "must be after since")
	}
	if s := v.Get("cursor"); s != "" {
		c, ok := DecodeCursor(s)
		if !ok {
			bad("cursor", "is not a cursor this API returned")
		} else {
			q.After = &c
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			bad("limit", "must be a whole number from 1 to "+strconv.Itoa(MaxLimit))
		} else {
			q.Limit = n
		}
	}
	if len(errs) > 0 {
		return ListQuery{}, httpapi.Validation(errs...)
	}
	return q, nil
}

// parseTime parses an RFC 3339 time (with or without fractional seconds) into UTC, truncated
// to the stored microsecond precision.
func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC().Truncate(time.Microsecond)
	// Keep to the years RFC 3339 can write back (after the offset is applied).
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}
