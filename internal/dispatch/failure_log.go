package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// failureLogWindow is how often one endpoint's failed attempts are logged at most: the first
// failure of a window is logged as it happens, the rest are counted and reported with the
// next logged one. A dead endpoint with thousands of parked deliveries thus writes about one
// line a minute, not one per attempt.
const failureLogWindow = time.Minute

// failureLog logs failed attempts at info, aggregated per endpoint. It logs codes, the
// attempt's detail (which may name the address dialled: operators read it), ids and counts,
// never secrets or bodies.
type failureLog struct {
	logger *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	byEnd map[string]*failureWindow
}

type failureWindow struct {
	start      time.Time
	suppressed int
}

func newFailureLog(logger *slog.Logger, now func() time.Time) *failureLog {
	return &failureLog{logger: logger, now: now, byEnd: make(map[string]*failureWindow)}
}

// failed records one failed attempt and logs it unless the endpoint's window has logged one.
func (f *failureLog) failed(ctx context.Context, webhookID, deliveryID string, attempt int, code, detail, status string) {
	now := f.now()
	f.mu.Lock()
	w, ok := f.byEnd[webhookID]
	if ok && now.Sub(w.start) < failureLogWindow {
		w.suppressed++
		f.mu.Unlock()
		return
	}
	suppressed := 0
	if ok {
		suppressed = w.suppressed
		w.start, w.suppressed = now, 0
	} else {
		f.byEnd[webhookID] = &failureWindow{start: now}
	}
	f.mu.Unlock()
	args := []any{"webhook_id", webhookID, "delivery_id", deliveryID, "attempt", attempt,
		"error", code, "detail", detail, "status", status}
	if suppressed > 0 {
		args = append(args, "more_failed_since_last_line", suppressed)
	}
	f.logger.InfoContext(ctx, "delivery attempt failed", args...)
}
