package sqlite

import (
	"context"

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

// CommitReadsSubmitters is false: reading each submitter in its request, on the reader pool,
// keeps the single writer's turn short.
func (submissions) CommitReadsSubmitters() bool { return false }

// ConcurrentCommits is false: SQLite has one writer.
func (submissions) ConcurrentCommits() bool { return false }

// Commit runs the batch's statements one by one in a transaction on the writer (the caller's,
// if any).
func (s submissions) Commit(ctx context.Context, b *store.SubmissionBatch) error {
	if s.e.tx != nil {
		return sqlcommon.CommitIn(ctx, s.e.tx, b)
	}
	return s.e.c.InTx(ctx, func(tx store.Querier) error { return sqlcommon.CommitIn(ctx, tx, b) })
}
