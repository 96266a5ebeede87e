package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// FailureLog turns a run of failures of one kind into a few log lines instead of one per
// failure: the first failure at WARN with its error, then at most one WARN per Interval
// counting the failures since the previous line, and one INFO line when it recovers, with the
// total and how long it lasted. During a NATS cluster failover the outbox fails hundreds of
// publishes in a few seconds; an operator needs to know that it failed, for how long, and
// that it recovered, not each batch.
//
// The summary is written by the first failure after Interval has passed, so a FailureLog
// needs no goroutine; a run that stops without recovering is summed up by its recovery line.
// A FailureLog is safe for concurrent use.
type FailureLog struct {
	// Logger receives the lines (required).
	Logger *slog.Logger
	// Msg is the failure's message ("publishing events failed"); summary lines add
	// " (still failing)" to it.
	Msg string
	// RecoveredMsg is the recovery line's message (default Msg + " (recovered)").
	RecoveredMsg string
	// Interval is the least time between two summary lines (default 10s).
	Interval time.Duration
	// NowFunc is the clock (default time.Now).
	NowFunc func() time.Time

	// active mirrors failing for Recover's fast path, called on every success.
	active atomic.Bool

	mu       sync.Mutex
	failing  bool
	since    time.Time // first failure of the run
	lastLine time.Time // when the last WARN was written
	total    int       // items failed in this run
	pending  int       // items failed since the last WARN
	lastErr  error
}

func (f *FailureLog) now() time.Time {
	if f.NowFunc != nil {
		return f.NowFunc()
	}
	return time.Now()
}

func (f *FailureLog) interval() time.Duration {
	if f.Interval > 0 {
		return f.Interval
	}
	return 10 * time.Second
}

// Fail records that n items (events, messages) failed with err. attrs go on the first line of
// a run only.
func (f *FailureLog) Fail(ctx context.Context, n int, err error, attrs ...any) {
	f.mu.Lock()
	now := f.now()
	f.total += n
	f.pending += n
	f.lastErr = err
	if !f.failing {
		f.failing, f.since, f.lastLine, f.pending = true, now, now, 0
		f.active.Store(true)
		f.mu.Unlock()
		f.Logger.WarnContext(ctx, f.Msg, append([]any{"count", n, "err", err}, attrs...)...)
		return
	}
	if now.Sub(f.lastLine) < f.interval() {
		f.mu.Unlock()
		return
	}
	count, total, since := f.pending, f.total, f.since
	f.lastLine, f.pending = now, 0
	f.mu.Unlock()
	f.Logger.WarnContext(ctx, f.Msg+" (still failing)", "count", count, "total", total,
		"for", now.Sub(since).Round(time.Millisecond), "last_err", err)
}

// Recover records a success. The first success after failures writes the recovery line; any
// other is free.
func (f *FailureLog) Recover(ctx context.Context) {
	if !f.active.Load() {
		return
	}
	f.mu.Lock()
	if !f.failing {
		f.mu.Unlock()
		return
	}
	now := f.now()
	total, since, lastErr := f.total, f.since, f.lastErr
	f.failing, f.total, f.pending, f.lastErr = false, 0, 0, nil
	f.active.Store(false)
	f.mu.Unlock()
	msg := f.RecoveredMsg
	if msg == "" {
		msg = f.Msg + " (recovered)"
	}
	f.Logger.InfoContext(ctx, msg, "total", total,
		"for", now.Sub(since).Round(time.Millisecond), "last_err", lastErr)
}

// Failing reports whether the last record was a failure.
func (f *FailureLog) Failing() bool { return f.active.Load() }
