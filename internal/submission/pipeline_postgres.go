package submission

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
)

// writePipelined is writeInTx for PostgreSQL in two round trips instead of one per
// statement: BEGIN with the respondents' lookup and the submissions' INSERT, then the outbox
// INSERT, the sessions' UPDATE and COMMIT (repeats' lookups, when there are any, take one
// more in between). Batches are small and frequent, so round trips, not the statements, are
// what a batch waits for.
func (c *committer) writePipelined(ctx context.Context, items []*pending) (entries []outbox.Entry, err error) {
	conn, err := postgres.Pool(c.db).Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("storing submissions: %w", err)
	}
	// A connection released inside a transaction is closed by the pool, never reused.
	defer conn.Release()
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()

	var (
		b        *pgx.Batch
		br       pgx.BatchResults
		inserted map[string]bool
	)
	for {
		b = &pgx.Batch{}
		b.Queue("BEGIN")
		keys := respondentKeys(items)
		query, args := respondentsQuery(keys)
		b.Queue(query, args...)
		query, args = insertSubmissionsQuery(items)
		b.Queue(query, args...)
		br = conn.SendBatch(ctx, b)
		var (
			found map[respondentKey]*respondentInfo
			rows  pgx.Rows
		)
		if _, err = br.Exec(); err == nil {
			if rows, err = br.Query(); err == nil {
				found, err = scanRespondents(rows, len(keys))
			}
		}
		if err == nil {
			if rows, err = br.Query(); err == nil {
				inserted, err = scanInserted(rows, len(items))
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("storing submissions: %w", err)
		}
		live := admit(items, found)
		if len(live) == len(items) {
			break
		}
		// Rare: a respondent was deleted or disabled after its token was issued. Its
		// submission is refused; the others are written again without it.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return nil, fmt.Errorf("storing submissions: %w", err)
		}
		if items = live; len(items) == 0 {
			committed = true // nothing is open
			return nil, nil
		}
	}

	entries, created, repeats := sortOut(items, inserted)
	if len(repeats) > 0 {
		// Rare (a retried request): one more round trip, since a repeat whose earlier
		// submission cannot be found must fail the transaction before anything commits.
		b = &pgx.Batch{}
		for _, it := range repeats {
			b.Queue(findSubmissionQuery, findSubmissionArgs(it)...)
		}
		br = conn.SendBatch(ctx, b)
		for _, it := range repeats {
			if err = br.QueryRow().Scan(&it.resultID); err != nil {
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("finding the earlier submission: %w", err)
		}
	}

	b = &pgx.Batch{}
	if err := c.stage(ctx, postgres.BatchQueue{Batch: b}, entries, created); err != nil {
		return nil, err
	}
	b.Queue("COMMIT")
	br = conn.SendBatch(ctx, b)
	for i := 0; err == nil && i < b.Len(); i++ {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("storing submissions: %w", err)
	}
	committed = true
	return entries, nil
}
