package sqlite

import (
	"context"

	"github.com/dispatch24/dispatch24/internal/store"
)

// driver implements store.Driver on the writer and reader connections.
type driver struct {
	executor
	c *conn
}

func newDriver(c *conn) *driver {
	return &driver{executor: executor{c: c}, c: c}
}

// executor runs the families' queries: reads on the reader pool and writes on the writer, or
// both on the transaction when tx is set.
type executor struct {
	c  *conn
	tx store.Querier // nil outside a transaction
}

// read returns the Querier for read-only statements.
func (e executor) read() store.Querier {
	if e.tx != nil {
		return e.tx
	}
	return e.c.Read()
}

// write returns the Querier for statements that write.
func (e executor) write() store.Querier {
	if e.tx != nil {
		return e.tx
	}
	return e.c.Write()
}

func (d *driver) InTx(ctx context.Context, fn func(tx store.Executor) error) error {
	return d.c.InTx(ctx, func(tx store.Querier) error {
		return fn(executor{c: d.c, tx: tx})
	})
}
