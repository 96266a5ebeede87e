package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestAttemptErrorKeepsDetail: a refused connection is logged in the attempt log as
// "connection_error: connection refused", without the address dialled (issue 16 item 5: it
// said only connection_error), the delivery's lastError stays the bare code, and the failed
// attempt is logged at info for operators.
func TestAttemptErrorKeepsDetail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		var logs lockedLog
		h.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		survey := h.addSurvey("")
		dead := closedURL(t)
		ep := h.addEndpoint(survey, dead)
		h.start(h.config("0s"))
		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		id := delivery.DeliveryID(ev.ID, ep.ID)
		waitFor(t, "the delivery to fail", func() bool {
			ds := h.deliveries("id = $1", id)
			return len(ds) == 1 && ds[0].Status == StatusFailed
		})
		as := h.attempts(id)
		if len(as) != 1 || as[0].Error != "connection_error: connection refused" {
			t.Fatalf("attempts %+v, want one with error %q", as, "connection_error: connection refused")
		}
		hostPort := strings.TrimSuffix(strings.TrimPrefix(dead, "http://"), "/hook")
		if strings.Contains(as[0].Error, "127.0.0.1") || strings.Contains(as[0].Error, hostPort) {
			t.Errorf("attempt error %q names the address dialled", as[0].Error)
		}
		if d := h.delivery(id); d.LastError != "connection_error" {
			t.Errorf("lastError %q, want the bare code", d.LastError)
		}
		waitFor(t, "the failed attempt's log line", func() bool {
			return strings.Contains(logs.String(), "level=INFO msg=\"delivery attempt failed\"")
		})
		line := logs.String()
		for _, want := range []string{"webhook_id=" + ep.ID, "delivery_id=" + id, "error=connection_error", "connection refused", "status=failed"} {
			if !strings.Contains(line, want) {
				t.Errorf("log lacks %q:\n%s", want, line)
			}
		}
		if strings.Contains(line, ep.Secret) || strings.Contains(line, `"recall"`) {
			t.Errorf("log holds a secret or a body:\n%s", line)
		}
	})
}

// TestFailureLogAggregates: one endpoint's failures are logged once a minute at most, the
// next line counting those left out; endpoints are counted apart.
func TestFailureLogAggregates(t *testing.T) {
	t.Parallel()
	var logs lockedLog
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f := newFailureLog(slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	ctx := context.Background()
	for i := range 5 {
		f.failed(ctx, "wh_dead", "dlv_"+string(rune('a'+i)), 1, "connection_error", "connection refused", "pending")
		now = now.Add(time.Second)
	}
	f.failed(ctx, "wh_other", "dlv_x", 2, "timeout", "timeout after 15s", "pending")
	if n := strings.Count(logs.String(), "delivery attempt failed"); n != 2 {
		t.Fatalf("%d lines for 5 failures of one endpoint and 1 of another within a minute, want 2:\n%s", n, logs.String())
	}
	now = now.Add(time.Minute)
	f.failed(ctx, "wh_dead", "dlv_z", 3, "connection_error", "connection refused", "failed")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; len(lines) != 3 || !strings.Contains(last, "delivery_id=dlv_z") || !strings.Contains(last, "more_failed_since_last_line=4") {
		t.Errorf("after the window: %q, want dlv_z with 4 more counted", lines)
	}
	if !strings.Contains(lines[0], "level=INFO") {
		t.Errorf("failed attempts are logged at %q, want INFO", lines[0])
	}
}
