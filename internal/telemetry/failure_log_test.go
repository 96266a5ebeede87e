package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestFailureLog: a run of failures is one WARN, then one summary per interval with the
// count since the last line, then one INFO on recovery; successes without failures log
// nothing.
func TestFailureLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f := &FailureLog{
		Logger:   slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})),
		Msg:      "publishing failed",
		Interval: 10 * time.Second,
		NowFunc:  func() time.Time { return now },
	}
	ctx := context.Background()
	boom := errors.New("no responders")

	f.Recover(ctx)
	for i := 0; i < 600; i++ { // 600 failures in 30s, 50ms apart
		f.Fail(ctx, 2, boom, "stream", "S")
		now = now.Add(50 * time.Millisecond)
	}
	if !f.Failing() {
		t.Fatal("not failing after failures")
	}
	f.Recover(ctx)
	f.Recover(ctx)
	if f.Failing() {
		t.Fatal("still failing after a success")
	}
	f.Fail(ctx, 1, boom)

	want := []string{
		`level=WARN msg="publishing failed" count=2 err="no responders" stream=S`,
		`level=WARN msg="publishing failed (still failing)" count=400 total=402 for=10s last_err="no responders"`,
		`level=WARN msg="publishing failed (still failing)" count=400 total=802 for=20s last_err="no responders"`,
		`level=INFO msg="publishing failed (recovered)" total=1200 for=30s last_err="no responders"`,
		`level=WARN msg="publishing failed" count=1 err="no responders"`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
