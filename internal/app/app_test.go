package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// TestNATSConnectErrorNamesTheURL: when NATS cannot be reached the error says which URL was
// tried, with its credentials redacted.
func TestNATSConnectErrorNamesTheURL(t *testing.T) {
	t.Parallel()
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"DATA_DIR": t.TempDir(), "NATS_URL": "nats://ops:hunter2-secret@" + addr}
	cfg, err := config.Load("dispatcher", nil, func(k string) string { return env[k] }, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := Open(context.Background(), cfg, logger, telemetry.NewMetrics())
	if err == nil {
		e.Close()
		t.Fatal("Open succeeded without a NATS server")
	}
	msg := err.Error()
	if !strings.Contains(msg, "nats://ops:redacted@"+addr) || strings.Contains(msg, "hunter2") {
		t.Fatalf("error %q: want it to name nats://ops:redacted@%s and not the password", msg, addr)
	}
}
