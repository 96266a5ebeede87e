package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Submissions returns the executor's queries of the submissions tables.
func (e executor) Submissions() store.Submissions {
	return submissions{sqlcommon.Submissions{Read: e.read(), Write: e.write()}, e}
}

type submissions struct {
	sqlcommon.Submissions
	e executor
}

// CommitReadsSubmitters is true: Commit sends the read with the INSERT.
func (submissions) CommitReadsSubmitters() bool { return true }

// ConcurrentCommits is true: transactions on distinct rows run side by side.
func (submissions) ConcurrentCommits() bool { return true }

// Commit writes the batch in a transaction of its own, pipelined (commitPipelined); inside
// the caller's transaction it runs the statements one by one.
func (s submissions) Commit(ctx context.Context, b *store.SubmissionBatch) error {
	if s.e.tx != nil {
		return sqlcommon.CommitIn(ctx, s.e.q, b)
	}
	return s.commitPipelined(ctx, b)
}

// commitPipelined is the batch's transaction in two round trips instead of one per
// statement: BEGIN with the submitters' read and the submissions' INSERT, then the events'
// INSERT, the sessions' UPDATE and COMMIT (repeats' lookups, when there are any, take one more
// in between). Batches are small and frequent, so round trips, not the statements, are what a
// batch waits for.
func (s submissions) commitPipelined(ctx context.Context, b *store.SubmissionBatch) (err error) {
	conn, err := s.e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("storing submissions: %w", mapErr(err))
	}
	// A connection released inside a transaction is closed by the pool, never reused.
	defer conn.Release()
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()

	items := sqlcommon.Pending(b)
	var (
		pb       *pgx.Batch
		br       pgx.BatchResults
		inserted map[string]bool
	)
	for {
		pb = &pgx.Batch{}
		pb.Queue("BEGIN")
		keys := sqlcommon.SubmitterKeys(items)
		queue(pb, sqlcommon.SubmittersQuery(keys))
		queue(pb, sqlcommon.InsertSubmissions(items))
		br = conn.SendBatch(ctx, pb)
		var (
			found map[store.SubmitterKey]*store.Submitter
			rows  pgx.Rows
		)
		if _, err = br.Exec(); err == nil {
			if rows, err = br.Query(); err == nil {
				found, err = sqlcommon.ScanSubmitters(rows, len(keys))
			}
		}
		if err == nil {
			if rows, err = br.Query(); err == nil {
				inserted, err = sqlcommon.ScanInserted(rows, len(items))
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("storing submissions: %w", mapErr(err))
		}
		live := sqlcommon.Admit(b, items, found)
		if len(live) == len(items) {
			break
		}
		// Rare: a respondent was deleted or disabled after its token was issued. Its
		// submission is refused; the others are written again without it.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return fmt.Errorf("storing submissions: %w", mapErr(err))
		}
		if items = live; len(items) == 0 {
			committed = true // nothing is open
			return nil
		}
	}

	created, evs, repeats := sqlcommon.SortOut(items, inserted)
	if len(repeats) > 0 {
		// Rare (a retried request): one more round trip, since a repeat whose earlier
		// submission cannot be found must fail the transaction before anything commits.
		pb = &pgx.Batch{}
		for _, it := range repeats {
			queue(pb, sqlcommon.FindSubmission(it))
		}
		br = conn.SendBatch(ctx, pb)
		for _, it := range repeats {
			if err = br.QueryRow().Scan(&it.ResultID); err != nil {
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("finding the earlier submission: %w", mapErr(err))
		}
	}

	stmts, err := sqlcommon.Stage(b, created, evs)
	if err != nil {
		return err
	}
	pb = &pgx.Batch{}
	for _, st := range stmts {
		queue(pb, st)
	}
	pb.Queue("COMMIT")
	if err := sendExecs(ctx, conn, pb); err != nil {
		return fmt.Errorf("storing submissions: %w", err)
	}
	committed = true
	return nil
}

// queue adds st to b.
func queue(b *pgx.Batch, st sqlcommon.Statement) { b.Queue(st.SQL, st.Args...) }

// sendExecs sends b, whose statements return no rows, in one round trip and reads every
// result, stopping at the first failure.
func sendExecs(ctx context.Context, c interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, b *pgx.Batch) error {
	br := c.SendBatch(ctx, b)
	var err error
	for i := 0; err == nil && i < b.Len(); i++ {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return mapErr(err)
}
