package app

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// A stream made by an older release (MaxAge 7 days, no size limits, discard old) takes
// RETENTION as its MaxAge, the configured size limits and discard new when a process starts;
// RETENTION=0 and limits of 0 leave it unbounded.
func TestStreamFollowsRetention(t *testing.T) {
	t.Parallel()
	n := outboxtest.Start(t)
	ctx := context.Background()
	s, err := n.JS.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	old := s.CachedInfo().Config
	old.MaxAge, old.MaxBytes, old.MaxMsgs, old.Discard = 7*24*time.Hour, -1, -1, jetstream.DiscardOld
	if _, err := n.JS.UpdateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vars              map[string]string
		age               time.Duration
		maxBytes, maxMsgs int64
	}{
		{map[string]string{}, 2160 * time.Hour, 2 << 30, 1000000},
		{map[string]string{"RETENTION": "48h", "NATS_STREAM_MAX_BYTES": "64MiB", "NATS_STREAM_MAX_MSGS": "500"}, 48 * time.Hour, 64 << 20, 500},
		{map[string]string{"RETENTION": "0", "NATS_STREAM_MAX_BYTES": "0", "NATS_STREAM_MAX_MSGS": "0"}, 0, -1, -1},
	} {
		cfg, err := config.Load("api", nil, func(k string) string { return tc.vars[k] }, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		l := startLink(t, n.URL(), &logs, func(c *NATSLinkConfig) { c.Stream = streamConfig(cfg, 1) })
		waitFor(t, "the link to be ready", l.Ready)
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := info.Config
		if got.MaxAge != tc.age || got.MaxBytes != tc.maxBytes || got.MaxMsgs != tc.maxMsgs || got.Discard != jetstream.DiscardNew {
			t.Errorf("%v: stream max age %s, max bytes %d, max msgs %d, discard %v; want %s, %d, %d, new",
				tc.vars, got.MaxAge, got.MaxBytes, got.MaxMsgs, got.Discard, tc.age, tc.maxBytes, tc.maxMsgs)
		}
	}
}
