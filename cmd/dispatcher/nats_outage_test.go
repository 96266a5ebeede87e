package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

func readyz(t *testing.T, addr string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// The dispatcher starts and stays up while NATS is down, answering /readyz with 503 naming
// NATS (one log line, however often it is probed); it consumes once NATS is up, and again
// after NATS comes back with an empty store (it creates the stream and consumer again).
func TestNATSOutage(t *testing.T) {
	n := outboxtest.Start(t)
	w := newWorldOn(t, n.URL(), n.JS)
	n.Stop()

	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenvFrom(w.env()), io.Discard, &logs) }()
	addr := waitListening(t, logs.String)

	for i := 0; i < 20; i++ { // a probe every 100ms for 2s
		code, body := readyz(t, addr)
		checks, _ := body["checks"].(map[string]any)
		if code != 503 || checks["nats"] != "connecting" || checks["store"] != "ok" {
			t.Fatalf("readyz with NATS down: %d %v", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the dispatcher exited with NATS down: %v\n%s", err, logs.String())
	default:
	}
	if got := strings.Count(logs.String(), "readiness check failed"); got != 1 {
		t.Errorf("%d readiness failure lines for 20 probes, want 1:\n%s", got, logs.String())
	}

	n.Restart()
	waitFor(t, 30*time.Second, "readyz 200", func() bool { code, _ := readyz(t, addr); return code == 200 })
	w.publish(t, 3)
	waitFor(t, 30*time.Second, "three deliveries", func() bool { return w.rc.distinct() == 3 })

	// A server back without its store: the dispatcher sets the stream and consumer up again
	// and consumes what is published then.
	n.RestartEmpty()
	waitFor(t, 30*time.Second, "the consumer to exist again", func() bool {
		_, err := n.JS.Consumer(context.Background(), events.StreamName, events.ConsumerName)
		code, _ := readyz(t, addr)
		return err == nil && code == 200
	})
	w.publish(t, 3)
	waitFor(t, 30*time.Second, "three more deliveries", func() bool { return w.rc.distinct() == 6 })

	// A plain restart (the store kept) while consuming: the iterator pulls again.
	n.Stop()
	waitFor(t, 10*time.Second, "readyz 503", func() bool { code, _ := readyz(t, addr); return code == 503 })
	n.Restart()
	waitFor(t, 30*time.Second, "readyz 200", func() bool { code, _ := readyz(t, addr); return code == 200 })
	restarted := time.Now()
	w.publish(t, 3)
	waitFor(t, 30*time.Second, "three deliveries after a restart", func() bool { return w.rc.distinct() == 9 })
	t.Logf("delivered 3 events published %s after the dispatcher was ready again", time.Since(restarted).Round(time.Millisecond))

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}
