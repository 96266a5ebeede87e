package delivery_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/httpapi"
)

func FuzzParseReplayRequest(f *testing.F) {
	for _, seed := range []string{
		`{"since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"}`,
		`{"surveyId":"s1","webhookId":"wh1","status":["failed","skipped","failed"],"type":"survey.session.submitted","since":"2026-01-01T00:00:00.123456789+02:00","until":"2026-01-02T00:00:00Z","dryRun":true}`,
		`{"since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"}`,
		`{"status":[],"since":"x","until":""}`,
		`{"status":"failed"}`,
		`{"status":[1]}`,
		`{"since":"0000-01-01T00:00:00Z","until":"9999-12-31T23:59:59Z"}`,
		`[]`, `null`, `{`, ``, `{"dryRun":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		filter, _, err := delivery.ParseReplayRequest(body)
		if err != nil {
			var p *httpapi.Problem
			if !errors.As(err, &p) || p.Status != 400 {
				t.Fatalf("error is not a 400 problem: %v", err)
			}
			return
		}
		if !filter.Since.Before(filter.Until) {
			t.Fatalf("since %v not before until %v", filter.Since, filter.Until)
		}
		if len(filter.Status) == 0 || !slices.IsSorted(filter.Status) || len(slices.Compact(slices.Clone(filter.Status))) != len(filter.Status) {
			t.Fatalf("statuses not canonical: %v", filter.Status)
		}
		for _, s := range filter.Status {
			if !slices.Contains(delivery.ReplayableStatuses, s) {
				t.Fatalf("status %q accepted", s)
			}
		}
		if filter.Type != "" && !delivery.ValidType(filter.Type) {
			t.Fatalf("type %q accepted", filter.Type)
		}
		if filter.Since.Location() != time.UTC || filter.Since.Nanosecond()%1000 != 0 {
			t.Fatalf("since not canonical: %v", filter.Since)
		}
		// The canonical key reads back as the same filter.
		again, _, err := delivery.ParseReplayRequest([]byte(filter.Key()))
		if err != nil {
			t.Fatalf("key %s does not parse: %v", filter.Key(), err)
		}
		if again.Key() != filter.Key() {
			t.Fatalf("key changes on a round trip: %s → %s", filter.Key(), again.Key())
		}
		if !json.Valid([]byte(filter.Key())) {
			t.Fatalf("key is not JSON: %s", filter.Key())
		}
	})
}

func FuzzParseListQuery(f *testing.F) {
	for _, seed := range []string{
		"",
		"surveyId=s1&webhookId=wh1&status=failed,pending&status=skipped&type=webhook.test&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z&limit=500",
		"status=,,&limit=0",
		"cursor=" + delivery.Cursor{CreatedAt: 1767225600000000, ID: "dlv_x"}.Encode(),
		"cursor=djF8LTF8eA",
		"since=2026-01-01T00:00:00%2B14:00&until=2025-12-31T23:59:59-12:00",
		"limit=-5&limit=7",
		"type=%ff&status=%00",
		"cursor=" + delivery.Cursor{CreatedAt: 1, ID: "a\x00b"}.Encode(),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // the server parses what it can, as net/http does
		q, err := delivery.ParseListQuery(v)
		if err != nil {
			var p *httpapi.Problem
			if !errors.As(err, &p) || p.Status != 400 || p.Code != "validation_failed" || len(p.Errors) == 0 {
				t.Fatalf("error is not a validation problem: %v", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > delivery.MaxLimit {
			t.Fatalf("limit %d", q.Limit)
		}
		for i, s := range q.Status {
			if !delivery.ValidStatus(s) || slices.Contains(q.Status[:i], s) {
				t.Fatalf("statuses %v", q.Status)
			}
		}
		if q.Type != "" && !delivery.ValidType(q.Type) {
			t.Fatalf("type %q", q.Type)
		}
		if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
			t.Fatalf("since %v until %v", q.Since, q.Until)
		}
		if q.After != nil {
			c, ok := delivery.DecodeCursor(q.After.Encode())
			if !ok || c != *q.After {
				t.Fatalf("cursor %+v does not round-trip", *q.After)
			}
			if strings.TrimSpace(c.ID) == "" && c.ID == "" {
				t.Fatal("empty cursor id accepted")
			}
			if !httpapi.ValidText(c.ID) {
				t.Fatalf("cursor id %q is not text the store takes", c.ID)
			}
		}
	})
}
