package sqlcommon

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// TakeSignInFailure implements store.Accounts. The insert is conditional on the count in one
// statement, so a blocked attempt writes nothing.
func (a Accounts) TakeSignInFailure(ctx context.Context, key, attempt string, at, since time.Time, limit int) (bool, error) {
	n, err := a.Write.Exec(ctx, `INSERT INTO signin_failures (key, failed_at, attempt)
		SELECT $1, $2, $5 WHERE (SELECT count(*) FROM signin_failures WHERE key = $1 AND failed_at > $3) < $4`,
		key, store.Micros(at), store.Micros(since), limit, attempt)
	if err != nil {
		return false, fmt.Errorf("recording sign-in attempt: %w", err)
	}
	return n == 1, nil
}

// RecentSignInFailures implements store.Accounts.
func (a Accounts) RecentSignInFailures(ctx context.Context, key string, since time.Time, n int) ([]time.Time, error) {
	rows, err := a.Read.Query(ctx, `SELECT failed_at FROM signin_failures WHERE key = $1 AND failed_at > $2
		ORDER BY failed_at DESC LIMIT $3`, key, store.Micros(since), n)
	if err != nil {
		return nil, fmt.Errorf("counting sign-in failures: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, fmt.Errorf("counting sign-in failures: %w", err)
		}
		out = append(out, store.FromMicros(at))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting sign-in failures: %w", err)
	}
	return out, nil
}

// DeleteSignInFailures implements store.Accounts.
func (a Accounts) DeleteSignInFailures(ctx context.Context, key string) error {
	if _, err := a.Write.Exec(ctx, "DELETE FROM signin_failures WHERE key = $1", key); err != nil {
		return fmt.Errorf("resetting sign-in failures: %w", err)
	}
	return nil
}

// DeleteSignInAttempt implements store.Accounts.
func (a Accounts) DeleteSignInAttempt(ctx context.Context, key, attempt string) error {
	if _, err := a.Write.Exec(ctx, "DELETE FROM signin_failures WHERE key = $1 AND attempt = $2", key, attempt); err != nil {
		return fmt.Errorf("resetting sign-in failures: %w", err)
	}
	return nil
}

// PruneSignInFailures implements store.Accounts.
func (a Accounts) PruneSignInFailures(ctx context.Context, before time.Time) (int64, error) {
	n, err := a.Write.Exec(ctx, "DELETE FROM signin_failures WHERE failed_at <= $1", store.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("pruning sign-in failures: %w", err)
	}
	return n, nil
}
