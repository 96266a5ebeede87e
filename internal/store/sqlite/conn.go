// Package sqlite is the embedded SQLite driver of the store (the pure-Go modernc.org/sqlite):
// one writer connection and a pool of read-only ones, and one implementation of every table
// family's queries (store.Driver).
//
// SQLite runs in WAL mode with synchronous=FULL (a commit is durable when it returns).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Open opens (creating if needed) the database file and applies the migrations.
func Open(ctx context.Context, path string) (*store.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating database directory: %w", err)
	}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening SQLite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Migrate through the writer before readers open: journal_mode(WAL) must be set first.
	c := &conn{w: w, r: w}
	db := store.NewDB(store.SQLite, c, newDriver(c))
	if err := db.Migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening SQLite: %w", err)
	}
	n := max(4, 2*runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	c.r = r
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening SQLite: %w", err)
	}
	return db, nil
}

type conn struct {
	w *sql.DB // the one writer connection
	r *sql.DB // read-only connections
}

func (c *conn) Read() store.Querier  { return querier{c.r} }
func (c *conn) Write() store.Querier { return querier{c.w} }
func (c *conn) Native() any          { return c.w }

func (c *conn) Close() {
	c.w.Close()
	if c.r != c.w {
		c.r.Close()
	}
}

func (c *conn) Ping(ctx context.Context) error {
	var one int
	return c.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// LockMigrations needs no lock: the one writer connection already serialises migrations.
func (c *conn) LockMigrations(context.Context) (func(), error) { return func() {}, nil }

func (c *conn) InTx(ctx context.Context, fn func(tx store.Querier) error) error {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(querier{tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// querier adapts database/sql.
type querier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (s querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, mapErr(err)
	}
	return n, nil
}

func (s querier) Query(ctx context.Context, query string, args ...any) (store.Rows, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return sqlRows{rows}, nil
}

func (s querier) QueryRow(ctx context.Context, query string, args ...any) store.Row {
	return errRow{s.q.QueryRowContext(ctx, query, args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func (r sqlRows) Err() error { return mapErr(r.Rows.Err()) }

func (r sqlRows) Scan(dest ...any) error { return mapErr(r.Rows.Scan(dest...)) }

type errRow struct{ *sql.Row }

func (r errRow) Scan(dest ...any) error { return mapErr(r.Row.Scan(dest...)) }

// mapErr turns the errors callers branch on into store.ErrNotFound and store.ErrConflict,
// keeping the original in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		switch sqlErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		}
	}
	return err
}
