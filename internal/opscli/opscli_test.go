package opscli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/pkg/client"
)

func TestProgressLine(t *testing.T) {
	t.Parallel()
	running := &client.Replay{Matched: 10, Enqueued: 10, Done: 5, Succeeded: 3, Failed: 2, Status: "running"}
	if got := progressLine(running, true); got != "[###############...............] 5/10 done, 10 enqueued, running: 3 succeeded, 2 failed" {
		t.Errorf("bar %q", got)
	}
	if got := progressLine(&client.Replay{Status: "completed"}, true); !strings.HasPrefix(got, "[####") {
		t.Errorf("empty replay %q", got)
	}
	allFailed := &client.Replay{Matched: 4, Enqueued: 4, Done: 4, Failed: 3, Status: "completed"}
	if got := progressLine(allFailed, false); got != "4/4 done, 4 enqueued, completed: 0 succeeded, 3 failed, 1 skipped" {
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
	errOut.Reset()
	err := Run(context.Background(), []string{"deliveries", "list"}, noenv, &out, &errOut)
	if !errors.Is(err, ErrUsage) || !strings.Contains(errOut.String(), "DISPATCH24_TOKEN") {
		t.Errorf("missing token: %v %q", err, errOut.String())
	}
}

// TestIsTerminal: files, pipes and /dev/null (a character device, but not a terminal) get
// plain progress lines, not a bar.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, out := range map[string]io.Writer{"/dev/null": devNull, "file": file, "pipe": w, "buffer": &bytes.Buffer{}} {
		if isTerminal(out) {
			t.Errorf("%s counted as a terminal", name)
		}
	}
}

func TestTokensIn(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		if k == "DISPATCH24_TOKEN" {
			return " from-env "
		}
		return ""
	}
	got := tokensIn([]string{"replay", "--token", "first-token", "-token=second-token", "--since", "token-like", "--token=", "--token=short", "--token"}, env)
	want := []string{"from-env", "first-token", "second-token"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tokensIn = %q, want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	secrets := []string{"d24pat_secret"}
	err := redact(fmt.Errorf("%w: bad value %q", ErrUsage, "d24pat_secret"), secrets)
	if strings.Contains(err.Error(), "d24pat_secret") || !errors.Is(err, ErrUsage) {
		t.Errorf("usage error: %v (is usage: %v)", err, errors.Is(err, ErrUsage))
	}
	err = redact(errors.New("GET /api/admin/deliveries/d24pat_secret: 404"), secrets)
	if err.Error() != "GET /api/admin/deliveries/[redacted]: 404" || errors.Is(err, ErrUsage) {
		t.Errorf("API error: %v", err)
	}
	plain := errors.New("nothing secret")
	if redact(plain, secrets) != plain || redact(nil, secrets) != nil {
		t.Error("redact changed an error without secrets")
	}
	var out bytes.Buffer
	w := &redactingWriter{w: &out, secrets: secrets}
	if n, err := w.Write([]byte("flag -limit: d24pat_secret\n")); err != nil || n != 27 || out.String() != "flag -limit: [redacted]\n" {
		t.Errorf("redactingWriter: %d %v %q", n, err, out.String())
	}
}
