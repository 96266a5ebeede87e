// Package postgres is the PostgreSQL driver of the store (pgx/v5): the connection pool, and one
// implementation of every table family's queries (store.Driver). It is the only package that
// imports pgx.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Open connects to PostgreSQL and applies the migrations. Unless the URL sets pool_max_conns,
// the pool holds up to 32 connections: enough for concurrent intake and the dispatcher's batched
// writes on a small machine.
func Open(ctx context.Context, databaseURL string) (*store.DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = 32
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	c := &conn{pool: pool}
	db := store.NewDB(store.Postgres, c, newDriver(pool))
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	if err := db.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Pool returns the pgx pool behind a DB this package opened, or nil.
func Pool(db *store.DB) *pgxpool.Pool {
	p, _ := db.Native().(*pgxpool.Pool)
	return p
}

// ExecURL runs one statement on a single connection to databaseURL (for administration such as
// creating a test schema).
func ExecURL(ctx context.Context, databaseURL, statement string) error {
	c, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	_, err = c.Exec(ctx, statement)
	return err
}

type conn struct{ pool *pgxpool.Pool }

func (c *conn) Read() store.Querier  { return querier{c.pool} }
func (c *conn) Write() store.Querier { return querier{c.pool} }
func (c *conn) Native() any          { return c.pool }
func (c *conn) Close()               { c.pool.Close() }

func (c *conn) Ping(ctx context.Context) error { return c.pool.Ping(ctx) }

func (c *conn) InTx(ctx context.Context, fn func(tx store.Querier) error) error {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	if err := fn(querier{tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// migrationLock is an arbitrary constant shared by every Dispatch24 process: "d24" in ASCII.
const migrationLock = 6566964

// LockMigrations takes a session advisory lock, so that concurrent starts of several replicas
// migrate one after the other.
func (c *conn) LockMigrations(ctx context.Context) (func(), error) {
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := pc.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		pc.Release()
		return nil, err
	}
	return func() {
		_, _ = pc.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
		pc.Release()
	}, nil
}

// querier adapts a pool, a connection or a transaction of pgx.
type querier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (p querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

func (p querier) Query(ctx context.Context, query string, args ...any) (store.Rows, error) {
	rows, err := p.q.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return pgRows{rows}, nil
}

func (p querier) QueryRow(ctx context.Context, query string, args ...any) store.Row {
	return errRow{p.q.QueryRow(ctx, query, args...)}
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Err() error { return mapErr(r.Rows.Err()) }

func (r pgRows) Scan(dest ...any) error { return mapErr(r.Rows.Scan(dest...)) }

type errRow struct{ pgx.Row }

func (r errRow) Scan(dest ...any) error { return mapErr(r.Row.Scan(dest...)) }

// mapErr turns the errors callers branch on into store.ErrNotFound and store.ErrConflict,
// keeping the original in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", store.ErrConflict, pgErr.ConstraintName)
	}
	return err
}
