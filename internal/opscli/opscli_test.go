package opscli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := map[string]string{
		"":                          "",
		"2026-11-20T10:00:00+01:00": "2026-11-20T09:00:00Z",
		"24h":                       "2026-11-22T12:00:00Z",
		"90m":                       "2026-11-23T10:30:00Z",
	}
	for in, want := range cases {
		got, err := parseTime(in, now)
		if err != nil || got != want {
			t.Errorf("parseTime(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "2026-13-01"} {
		if _, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	if got := progressLine(10, 10, 5, "running", true); got != "[###############...............] 5/10 done, 10 enqueued, running" {
		t.Errorf("bar %q", got)
	}
	if got := progressLine(0, 0, 0, "completed", true); !strings.HasPrefix(got, "[####") {
		t.Errorf("empty replay %q", got)
	}
	if got := progressLine(4, 2, 1, "running", false); got != "1/4 done, 2 enqueued, running" {
		t.Errorf("plain %q", got)
	}
}

func TestUsageAndMissingToken(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	noenv := func(string) string { return "" }
	for _, args := range [][]string{nil, {"bogus"}, {"deliveries"}, {"deliveries", "show"}, {"replay", "--since", "nonsense", "--token", "x"}} {
		errOut.Reset()
		if err := Run(context.Background(), args, noenv, &out, &errOut); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: got %v", args, err)
		}
	}
	err := Run(context.Background(), []string{"deliveries", "list"}, noenv, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DISPATCH24_TOKEN") {
		t.Errorf("missing token: %v", err)
	}
}
