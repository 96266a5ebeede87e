package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dispatch24/dispatch24/internal/store"
)

// driver implements store.Driver on a pgx pool.
type driver struct {
	executor
}

func newDriver(pool *pgxpool.Pool) *driver {
	return &driver{executor{q: querier{pool}, pool: pool}}
}

// executor runs the families' queries on the pool, or on a transaction when tx is set.
type executor struct {
	q    store.Querier
	pool *pgxpool.Pool
	tx   pgx.Tx // nil outside a transaction
}

func (d *driver) InTx(ctx context.Context, fn func(tx store.Executor) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	if err := fn(executor{q: querier{tx}, pool: d.pool, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// read returns the Querier for read-only statements.
func (e executor) read() store.Querier { return e.q }

// write returns the Querier for statements that write.
func (e executor) write() store.Querier { return e.q }
