package dispatch

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// retryPolicy turns WEBHOOK_RETRY_SCHEDULE into due times. schedule[i] is the delay before
// attempt i+1, so its length is the attempt limit; every delay is spread by ±jitter so that
// deliveries failing together do not come back together.
type retryPolicy struct {
	schedule []time.Duration
	jitter   float64
}

// maxAttempts is the attempt limit.
func (p retryPolicy) maxAttempts() int { return len(p.schedule) }

// delay returns the jittered delay before attempt n (1-based); 0 for n beyond the schedule.
func (p retryPolicy) delay(n int) time.Duration {
	if n < 1 || n > len(p.schedule) {
		return 0
	}
	d := p.schedule[n-1]
	if d <= 0 || p.jitter <= 0 {
		return d
	}
	// A constant backoff randomised by ±jitter: uniform in [d(1-j), d(1+j)].
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(d), backoff.WithMultiplier(1),
		backoff.WithMaxInterval(d), backoff.WithRandomizationFactor(p.jitter), backoff.WithMaxElapsedTime(0))
	return b.NextBackOff()
}

// next decides what follows failed attempt n (1-based) made at now: the time of attempt n+1,
// at least retryAfter away, or ok false when the schedule is used up.
func (p retryPolicy) next(n int, now time.Time, retryAfter time.Duration) (time.Time, bool) {
	if n >= len(p.schedule) {
		return time.Time{}, false
	}
	return now.Add(max(p.delay(n+1), retryAfter)), true
}
