package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// limiter counts failed sign-ins per account key and client address in signin_failures, so
// every API replica sees the same counts.
//
// An attempt records its row before the password is checked, and the row stays as a failure
// unless the attempt succeeds. The insert is conditional on the count, so a blocked attempt
// writes nothing and waiting out the window is enough. The count is read again after the
// insert: parallel attempts on several connections then see each other, and a burst of
// guesses cannot all pass the check before any of them is recorded (the few that lose that
// race are refused and stay counted).
type limiter struct {
	db     *store.DB
	secret []byte
	max    int
	window time.Duration
	now    func() time.Time
}

// attempt is one admitted sign-in attempt.
type attempt struct {
	l   *limiter
	key string
}

// key is an HMAC of the account key and the address, so the table holds neither e-mails nor
// respondent tokens.
func (l *limiter) key(accountKey, clientIP string) string {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("dispatch24 sign-in failure\x00"))
	m.Write([]byte(accountKey))
	m.Write([]byte{0})
	m.Write([]byte(clientIP))
	return hex.EncodeToString(m.Sum(nil))
}

// reserve admits and records an attempt, or returns a *RateLimitError when the key has
// failed max times within the window.
func (l *limiter) reserve(ctx context.Context, accountKey, clientIP string) (*attempt, error) {
	now := l.now()
	key := l.key(accountKey, clientIP)
	since := store.Micros(now.Add(-l.window))
	n, err := l.db.Exec(ctx, `INSERT INTO signin_failures (key, failed_at)
		SELECT $1, $2 WHERE (SELECT count(*) FROM signin_failures WHERE key = $1 AND failed_at > $3) < $4`,
		key, store.Micros(now), since, l.max)
	if err != nil {
		return nil, fmt.Errorf("recording sign-in attempt: %w", err)
	}
	recent, err := l.recent(ctx, key, since)
	if err != nil {
		return nil, err
	}
	if n == 1 && len(recent) <= l.max {
		return &attempt{l: l, key: key}, nil
	}
	// Blocked. The next attempt is admitted once fewer than max failures are left in the
	// window, i.e. when the max-th most recent one leaves it.
	retry := time.Second
	if len(recent) >= l.max {
		retry = max(store.FromMicros(recent[l.max-1]).Add(l.window).Sub(now), time.Second)
	}
	return nil, &RateLimitError{RetryAfter: retry}
}

// recent returns up to max+1 failure times of key within the window, newest first.
func (l *limiter) recent(ctx context.Context, key string, since int64) ([]int64, error) {
	rows, err := l.db.Query(ctx, `SELECT failed_at FROM signin_failures WHERE key = $1 AND failed_at > $2
		ORDER BY failed_at DESC LIMIT $3`, key, since, l.max+1)
	if err != nil {
		return nil, fmt.Errorf("counting sign-in failures: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, fmt.Errorf("counting sign-in failures: %w", err)
		}
		out = append(out, at)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting sign-in failures: %w", err)
	}
	return out, nil
}

// succeeded forgets the key's failures: a successful sign-in resets the count.
func (a *attempt) succeeded(ctx context.Context) error {
	if _, err := a.l.db.Exec(ctx, "DELETE FROM signin_failures WHERE key = $1", a.key); err != nil {
		return fmt.Errorf("resetting sign-in failures: %w", err)
	}
	return nil
}
