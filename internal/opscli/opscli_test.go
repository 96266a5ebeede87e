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
	"time"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := map[string]string{
		"":                          "",
		"2026-11-20T10:00:00+01:00": "2026-11-20T09:00:00Z",
		"24h":                       "2026-11-22T12:00:00Z",
		"90m":                       "2026-11-23T10:30:00Z",
	}
	for in, want := range cases {
		got, err := parseTime(in, now)
		if err != nil || got != want {
			t.Errorf("parseTime(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "2026-13-01"} {
		if _, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	if got := progressLine(10, 10, 5, "running", true); got != "[###############...............] 5/10 done, 10 enqueued, running" {
		t.Errorf("bar %q", got)
	}
	if got := progressLine(0, 0, 0, "completed", true); !strings.HasPrefix(got, "[####") {
		t.Errorf("empty replay %q", got)
	}
	if got := progressLine(4, 2, 1, "running", false); got != "1/4 done, 2 enqueued, running" {
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
