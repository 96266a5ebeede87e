package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLink connects to url as app.Open does (in the background, forever) and runs a link.
func startLink(t *testing.T, url string, logs *syncBuffer, mod func(*NATSLinkConfig)) *NATSLink {
	t.Helper()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := NATSLinkConfig{Conn: nc, Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	l, err := NewNATSLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("link: %v", err)
		}
	})
	return l
}

// The link comes up once NATS does, sets the topology up again when a server comes back with
// an empty store, and hands out the consumer only while ready.
func TestNATSLinkOutageAndEmptyStore(t *testing.T) {
	t.Parallel()
	n := outboxtest.Start(t)
	n.Stop()
	var logs syncBuffer
	l := startLink(t, n.URL(), &logs, nil)
	var readies atomic.Int32
	l.OnReady(func() { readies.Add(1) })

	if s := l.State(); s != NATSConnecting {
		t.Fatalf("state %s with NATS down, want %s", s, NATSConnecting)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if _, err := l.Consumer(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Consumer with NATS down: %v", err)
	}
	cancel()

	n.Restart()
	waitFor(t, "the link to be ready", l.Ready)
	c, err := l.Consumer(context.Background())
	if err != nil || c.CachedInfo().Name != events.ConsumerName {
		t.Fatalf("consumer: %v", err)
	}

	// A server restarted without its store: the stream and consumer are created again.
	n.RestartEmpty()
	waitFor(t, "the link to be ready after an empty restart", func() bool { return readies.Load() >= 2 && l.Ready() })
	if _, err := n.JS.Consumer(context.Background(), events.StreamName, events.ConsumerName); err != nil {
		t.Fatalf("consumer after an empty restart: %v", err)
	}
	if !strings.Contains(logs.String(), "NATS topology missing after a reconnect") {
		t.Errorf("no line about the missing topology:\n%s", logs.String())
	}

	// A user that finds the consumer gone asks for a check.
	if err := n.JS.DeleteConsumer(context.Background(), events.StreamName, events.ConsumerName); err != nil {
		t.Fatal(err)
	}
	l.Recheck()
	waitFor(t, "the consumer to be created again", func() bool {
		_, err := n.JS.Consumer(context.Background(), events.StreamName, events.ConsumerName)
		return err == nil && l.Ready()
	})
}

// A server older than Dispatch24 supports is refused: one ERROR line, not ready, nothing to
// consume, not usable for publishing; the link leaves it periodically and takes a server it
// accepts.
func TestNATSLinkRefusesOldServer(t *testing.T) {
	t.Parallel()
	n := outboxtest.Start(t)
	var tooOld atomic.Bool
	tooOld.Store(true)
	var logs syncBuffer
	l := startLink(t, n.URL(), &logs, func(c *NATSLinkConfig) {
		c.RefusedRetry = 300 * time.Millisecond
		c.VersionCheckFunc = func(nc *nats.Conn) error {
			if tooOld.Load() {
				return fmt.Errorf("%w: %s is %s, Dispatch24 needs 99.0.0 or newer", events.ErrServerTooOld, nc.ConnectedUrlRedacted(), nc.ConnectedServerVersion())
			}
			return nil
		}
	})
	waitFor(t, "the refusal", func() bool { return l.State() == NATSRefused })
	if l.Usable() || l.Ready() || l.CurrentConsumer() != nil {
		t.Fatal("a refused server is usable")
	}
	err := l.ReadyCheck(context.Background())
	var st interface{ State() string }
	if !errors.As(err, &st) || st.State() != NATSRefused {
		t.Fatalf("ReadyCheck: %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "needs 99.0.0") {
		t.Fatalf("no clear error logged:\n%s", logs.String())
	}
	waitFor(t, "a forced reconnect", func() bool { return l.nc.Stats().Reconnects >= 1 })

	tooOld.Store(false) // the operator upgraded the server
	waitFor(t, "the link to be ready", l.Ready)
	if !l.Usable() {
		t.Fatal("an accepted server is not usable")
	}
	var c jetstream.Consumer
	if c, err = l.Consumer(context.Background()); err != nil || c == nil {
		t.Fatalf("consumer: %v", err)
	}
}
