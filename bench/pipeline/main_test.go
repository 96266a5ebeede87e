package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"10KB": 10 << 10, "10kb": 10 << 10, "2K": 2 << 10, "1MB": 1 << 20, "512": 512, "700B": 700, " 3 KiB ": 3 << 10} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KB", "-1KB", "ten"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "burst"}, {"-endpoints", "0"}, {"-events", "0"}, {"-dispatcher", "remote"},
		{"-recall-size", "2MB"}, {"-verify", "some"}, {"extra"}, {"-api", "remote"}, {"-api", "process"},
		{"-purge", "-1"}, {"-purge", "10", "-mode", "backlog"}, {"-purge", "10", "-purge-window", "-1s"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v: accepted", args)
		}
		if out.Len() > 0 {
			t.Errorf("%v: reported figures: %s", args, out.String())
		}
	}
}

// TestSmallRuns runs the whole pipeline on a few events in each mode: the harness's own
// exact checks (every submission delivered to every endpoint and recorded in PostgreSQL)
// must pass, and the report must count what was sent.
func TestSmallRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; runs the whole pipeline")
	}
	for _, mode := range []string{"steady", "backlog"} {
		t.Run(mode, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"-events", "60", "-endpoints", "3", "-clients", "4", "-respondents", "5",
				"-recall-size", "2KB", "-mode", mode, "-verify", "all"}, &out, &errOut)
			if err != nil {
				t.Fatalf("run: %v\nstderr:\n%s", err, errOut.String())
			}
			for _, want := range []string{
				"submissions: 60 accepted (0 errors)",
				"deliveries: 180 in",
				"receiver: 180 requests, 180 distinct webhook-ids, 0 duplicates, 180 verified, 0 rejected",
				"postgres: 180 succeeded deliveries, 180 attempt rows (180 2xx)",
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// TestSmallPurgeRun runs the pipeline with the retention purge over a few expired deliveries,
// in windows: the run's checks pass (the seeded survey is apart from the bench survey), and
// the purge deletes every seeded delivery (counted in the store afterwards).
func TestSmallPurgeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; runs the whole pipeline")
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-events", "200", "-clients", "4", "-respondents", "5", "-recall-size", "2KB",
		"-rate", "100", "-purge", "3000", "-purge-after", "0s", "-purge-window", "50ms"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"submissions: 200 accepted (0 errors)",
		// The store's own count: every seeded delivery is gone. The purge line's tally can
		// miss a batch that committed as its window's deadline cut the call short.
		"; 0 seeded deliveries left",
		"due → receipt while the purger ran",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
