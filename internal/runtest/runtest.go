// Package runtest starts a binary's run function in-process, as end-to-end tests do: on
// HTTP_ADDR=127.0.0.1:0, reading the bound address from its "listening addr=…" log line.
package runtest

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"
)

// RunFunc is the signature of every binary's run.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Process is a running run function.
type Process struct {
	// URL is http://<bound address>.
	URL    string
	Stdout *Buffer
	Stderr *Buffer

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	err      error
}

// Start calls run with env as its whole environment (HTTP_ADDR defaults to 127.0.0.1:0) and
// waits up to 60s for it to listen. The process is stopped at the end of the test.
func Start(t testing.TB, run RunFunc, env map[string]string, args ...string) *Process {
	t.Helper()
	vars := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "info"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{Stdout: &Buffer{}, Stderr: &Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		p.done <- run(ctx, args, func(k string) string { return vars[k] }, p.Stdout, p.Stderr)
	}()
	re := regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening","addr":"([^"]+)"`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.Stderr.String()); m != nil {
			addr := m[1]
			if addr == "" {
				addr = m[2]
			}
			p.URL = "http://" + addr
			break
		}
		select {
		case err := <-p.done:
			cancel()
			t.Fatalf("process exited before listening: %v\n%s", err, p.Stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("process did not listen within 60s:\n%s", p.Stderr.String())
		}
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

// Stop cancels the run context (as SIGTERM does) and returns run's error. It may be called
// more than once.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		p.cancel()
		p.err = <-p.done
	})
	return p.err
}

// Buffer is a goroutine-safe bytes.Buffer for captured output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
