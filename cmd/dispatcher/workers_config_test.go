package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/config"
)

// TestWorkersHelpTellsTheTruth: the workers' help says what the binary does (issue 16 item 3):
// NATS_URL and DATABASE_URL are required, not "unset → embedded", and HTTP_ADDR is the health
// and metrics address on a default port of its own, not the API's 8080.
func TestWorkersHelpTellsTheTruth(t *testing.T) {
	t.Parallel()
	var stdout strings.Builder
	if err := run(context.Background(), []string{"help"}, getenvFrom(nil), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.ToUpper(f[0]) == f[0] && strings.Contains(f[0], "_") {
			rows[f[0]] = line
		}
	}
	for _, name := range []string{"NATS_URL", "DATABASE_URL", "SECRETS_KEY"} {
		row, ok := rows[name]
		if !ok {
			t.Errorf("help has no %s row:\n%s", name, stdout.String())
			continue
		}
		if !strings.Contains(row, "required") || strings.Contains(row, "embedded") {
			t.Errorf("help row %q: want it required, with no embedded default", row)
		}
	}
	if row := rows["HTTP_ADDR"]; !strings.Contains(row, "127.0.0.1:8081") || strings.Contains(row, "8080") ||
		!strings.Contains(row, "/metrics") || strings.Contains(row, "API") {
		t.Errorf("help row %q: want the health and metrics address, default 127.0.0.1:8081", row)
	}
	for _, name := range []string{"TOKEN_SECRET", "DATA_DIR", "ADMIN_PASSWORD"} {
		if _, ok := rows[name]; ok {
			t.Errorf("help lists %s, which only the api reads", name)
		}
	}
	// What the help says is what the configuration does.
	c, err := config.Load("dispatcher", nil, getenvFrom(map[string]string{
		"DATABASE_URL": "postgres://x@127.0.0.1/db", "NATS_URL": "nats://127.0.0.1:4222", "SECRETS_KEY": testSecretsKey,
	}), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8081" {
		t.Errorf("dispatcher HTTP_ADDR default = %s, want 127.0.0.1:8081", c.HTTPAddr)
	}
}

// TestWorkersCheckListenAddressFirst: a taken HTTP_ADDR stops the dispatcher with one line
// naming HTTP_ADDR and exit status 2 before it touches the store or NATS. On main it first
// connected (here: to a PostgreSQL that does not answer) and failed on that instead.
func TestWorkersCheckListenAddressFirst(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// Port 1 on loopback: nothing listens there, so any attempt to connect would fail.
	env := map[string]string{
		"HTTP_ADDR":    taken.Addr().String(),
		"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"NATS_URL":     "nats://127.0.0.1:1",
		"SECRETS_KEY":  testSecretsKey,
	}
	var logs, report strings.Builder
	err = run(context.Background(), nil, getenvFrom(env), io.Discard, &logs)
	code := exitCode(err, &report)
	if code != 2 {
		t.Fatalf("exit status %d (%v), want 2 for a taken HTTP_ADDR", code, err)
	}
	line := strings.TrimSpace(report.String())
	if strings.Count(line, "\n") != 0 || !strings.Contains(line, "HTTP_ADDR") || !strings.Contains(line, taken.Addr().String()) {
		t.Errorf("report %q: want one line naming HTTP_ADDR and the address", line)
	}
	if strings.Contains(logs.String(), "store ready") || strings.Contains(logs.String(), "NATS") {
		t.Errorf("the dispatcher went on to the store or NATS before checking HTTP_ADDR:\n%s", logs.String())
	}
}
