package app

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// TestNATSLinesNameTheURL: when NATS cannot be reached at start, and when it goes away later,
// the log says which URL (NATS_URL) is being tried, with its credentials redacted.
func TestNATSLinesNameTheURL(t *testing.T) {
	t.Parallel()
	n := outboxtest.Start(t)
	n.Stop()
	port := strings.TrimPrefix(n.URL(), "nats://127.0.0.1:")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("unexpected NATS URL %s", n.URL())
	}
	env := map[string]string{"DATA_DIR": t.TempDir(), "NATS_URL": "nats://ops:hunter2-secret@127.0.0.1:" + port}
	cfg, err := config.Load("dispatcher", nil, func(k string) string { return env[k] }, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	e, err := Open(context.Background(), cfg, logger, telemetry.NewMetrics())
	if err != nil {
		t.Fatalf("Open with NATS down: %v", err)
	}
	defer e.Close()
	want := "nats_url=nats://ops:redacted@127.0.0.1:" + port
	waitFor(t, "a line naming the URL at start", func() bool {
		return strings.Contains(logs.String(), "NATS not reachable") && strings.Contains(logs.String(), want)
	})

	n.Restart()
	waitFor(t, "NATS to connect", e.NC.IsConnected)
	n.Stop()
	waitFor(t, "the disconnection line", func() bool {
		for line := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(line, "NATS disconnected") && strings.Contains(line, want) {
				return true
			}
		}
		return false
	})
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("the NATS password is in the log:\n%s", logs.String())
	}
}
