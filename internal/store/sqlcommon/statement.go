package sqlcommon

import (
	"context"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Statement is one SQL statement with its arguments, built once and run by a driver as it
// sees fit: on its own, in a transaction, or queued in a pipeline.
type Statement struct {
	SQL  string
	Args []any
	// Disables marks a statement of a batch of delivery results that disables endpoints: it
	// returns (id, survey_id, disabled_reason) rows.
	Disables bool
}

// Run runs statements one after the other through q, stopping at the first failure.
func Run(ctx context.Context, q store.Querier, stmts []Statement) error {
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s.SQL, s.Args...); err != nil {
			return err
		}
	}
	return nil
}
