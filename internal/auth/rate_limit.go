package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// limiter counts failed sign-ins in signin_failures, so every API replica sees the same
// counts, under two keys: the account key with the client address (max failures), and the
// client address alone across all accounts (maxAddr failures), so that guessing many
// accounts, or flooding sign-ins with invented e-mails, from one address is limited too.
//
// An attempt records its rows before the password is checked, and they stay as failures
// unless the attempt succeeds. The insert is conditional on the count, so a blocked attempt
// writes nothing and waiting out the window is enough. The count is read again after the
// insert: parallel attempts on several connections then see each other, and a burst of
// guesses cannot all pass the check before any of them is recorded (the few that lose that
// race are refused and stay counted).
type limiter struct {
	db      *store.DB
	secret  []byte
	max     int
	maxAddr int
	window  time.Duration
	now     func() time.Time
}

// attempt is one admitted sign-in attempt: its rows under both keys.
type attempt struct {
	l       *limiter
	key     string
	addrKey string
	id      string // the attempt column of its rows
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

// addrKey is the key of an address's failures across accounts. The prefix differs from key's,
// so no account key can collide with it.
func (l *limiter) addrKey(clientIP string) string {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("dispatch24 sign-in failures of an address\x00"))
	m.Write([]byte(clientIP))
	return hex.EncodeToString(m.Sum(nil))
}

// reserve admits and records an attempt, or returns a *RateLimitError when the address has
// failed maxAddr times, or the account key and address max times, within the window.
func (l *limiter) reserve(ctx context.Context, accountKey, clientIP string) (*attempt, error) {
	now := l.now()
	a := &attempt{l: l, key: l.key(accountKey, clientIP), addrKey: l.addrKey(clientIP), id: randomString(12)}
	if err := l.take(ctx, a.addrKey, a.id, l.maxAddr, now); err != nil {
		return nil, err
	}
	if err := l.take(ctx, a.key, a.id, l.max, now); err != nil {
		// A blocked attempt writes nothing: give back the address's row.
		if uerr := a.forget(ctx, a.addrKey); uerr != nil {
			return nil, uerr
		}
		return nil, err
	}
	return a, nil
}

// take records a failure under key unless key already has limit failures in the window.
func (l *limiter) take(ctx context.Context, key, id string, limit int, now time.Time) error {
	acc := l.db.Driver.Accounts()
	since := now.Add(-l.window)
	taken, err := acc.TakeSignInFailure(ctx, key, id, now, since, limit)
	if err != nil {
		return err
	}
	// Up to limit+1 failure times of key within the window, newest first.
	recent, err := acc.RecentSignInFailures(ctx, key, since, limit+1)
	if err != nil {
		return err
	}
	if taken && len(recent) <= limit {
		return nil
	}
	// Blocked. The next attempt is admitted once fewer than limit failures are left in the
	// window, i.e. when the limit-th most recent one leaves it.
	retry := time.Second
	if len(recent) >= limit {
		retry = max(recent[limit-1].Add(l.window).Sub(now), time.Second)
	}
	return &RateLimitError{RetryAfter: retry}
}

// forget deletes this attempt's row under key.
func (a *attempt) forget(ctx context.Context, key string) error {
	return a.l.db.Driver.Accounts().DeleteSignInAttempt(ctx, key, a.id)
}

// succeeded forgets the account key's failures (a successful sign-in resets its count) and
// this attempt's row of the address: the address's other failures stay, so signing in to an
// account one holds cannot clear the count of guesses at other accounts.
func (a *attempt) succeeded(ctx context.Context) error {
	if err := a.l.db.Driver.Accounts().DeleteSignInFailures(ctx, a.key); err != nil {
		return err
	}
	return a.forget(ctx, a.addrKey)
}

// canceled gives back both rows of an attempt whose password was never checked (the hashing
// bound was full): it was no guess, so it is not counted.
func (a *attempt) canceled(ctx context.Context) error {
	if err := a.forget(ctx, a.key); err != nil {
		return err
	}
	return a.forget(ctx, a.addrKey)
}
