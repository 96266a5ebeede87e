package webhook_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"86400", 24 * time.Hour, true},
		{"99999999999999999999999", math.MaxInt64, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Mon, 23 Nov 2026 10:20:00 GMT", 5 * time.Minute, true},  // IMF-fixdate
		{"Monday, 23-Nov-26 10:20:00 GMT", 5 * time.Minute, true}, // RFC 850
		{"Mon Nov 23 10:20:00 2026", 5 * time.Minute, true},       // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},    // in the past
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"+5", 0, false},
		{"soon", 0, false},
		{"2026-11-23T10:20:00Z", 0, false},
	}
	for _, tt := range tests {
		got, ok := webhook.ParseRetryAfter(tt.value, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, seed := range []string{"120", "0", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "-1", "", "soon"} {
		f.Add(seed)
	}
	now := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value string) {
		d, ok := webhook.ParseRetryAfter(value, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", value, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, false; want 0 when not ok", value, d)
		}
	})
}
