// Package outboxtest gives tests a real NATS server with the events stream, which they can
// stop and start again on the same port and store, and a way to read what reached the
// stream.
package outboxtest

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// NATS is an embedded NATS server listening on a loopback port, with a client connection that
// reconnects forever.
type NATS struct {
	t        testing.TB
	storeDir string
	port     int

	mu  sync.Mutex
	srv *embeddednats.Server

	NC *nats.Conn
	JS jetstream.JetStream
}

// Start starts the server with the events stream (no consumer, so published events stay in
// the stream to be counted). Everything stops at the end of the test.
func Start(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, storeDir: t.TempDir(), port: -1}
	n.Restart()
	u, err := url.Parse(n.srv.ClientURL())
	if err != nil {
		t.Fatalf("NATS client URL: %v", err)
	}
	if n.port, err = strconv.Atoi(u.Port()); err != nil {
		t.Fatalf("NATS port: %v", err)
	}
	n.NC, err = nats.Connect(n.srv.ClientURL(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	if n.JS, err = jetstream.New(n.NC); err != nil {
		t.Fatalf("JetStream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := events.EnsureStream(ctx, n.JS, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.NC.Close()
		n.Stop()
	})
	return n
}

// Stop shuts the server down (the client keeps trying to reconnect).
func (n *NATS) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv = nil
	}
}

// URL is the server's client URL (the same across restarts).
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// RestartEmpty starts the server again on the same port with a new, empty store: a node
// replaced or restarted without its volume. The events stream is gone until someone creates
// it again.
func (n *NATS) RestartEmpty() {
	n.t.Helper()
	n.Stop()
	n.mu.Lock()
	n.storeDir = n.t.TempDir()
	n.mu.Unlock()
	n.Restart()
}

// Restart starts the server again on the same port and store directory.
func (n *NATS) Restart() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	srv, err := embeddednats.Start(embeddednats.Config{StoreDir: n.storeDir, Port: n.port})
	if err != nil {
		n.t.Fatalf("starting NATS: %v", err)
	}
	n.srv = srv
}

// Messages returns every message in the events stream, in order.
func (n *NATS) Messages(t testing.TB) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := n.JS.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("reading stream message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// WaitMessages waits until the stream holds at least n messages and returns them all.
func (n *NATS) WaitMessages(t testing.TB, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs := n.Messages(t)
		if len(msgs) >= want || time.Now().After(deadline) {
			if len(msgs) < want {
				t.Fatalf("stream holds %d messages, want %d", len(msgs), want)
			}
			return msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}
