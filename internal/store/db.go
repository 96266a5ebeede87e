package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned when a row asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write breaks a unique constraint.
var ErrConflict = errors.New("conflict")

// Dialect names the database behind a DB.
type Dialect string

// The two dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// SkipLocked is the row-locking clause that lets concurrent workers claim disjoint rows:
// " FOR UPDATE SKIP LOCKED" on PostgreSQL, nothing on SQLite (whose single writer already
// serialises claims).
func (d Dialect) SkipLocked() string {
	if d == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// Rows is an open result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is a single-row result; Scan returns ErrNotFound when there was no row.
type Row interface {
	Scan(dest ...any) error
}

// Querier runs statements; DB, the transactions of InTx and Write() all are Queriers.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Conn is one database's connection handle, implemented by the drivers (internal/store/postgres
// and internal/store/sqlite). Callers use it through DB.
type Conn interface {
	// Read runs read-only queries (SQLite: the reader pool).
	Read() Querier
	// Write runs statements on the writer (SQLite: the one writer connection).
	Write() Querier
	// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
	InTx(ctx context.Context, fn func(tx Querier) error) error
	// LockMigrations serialises concurrent migrations of several replicas; the returned
	// function releases the lock.
	LockMigrations(ctx context.Context) (unlock func(), err error)
	Ping(ctx context.Context) error
	Close()
	// Native returns the driver's own handle (*pgxpool.Pool, *sql.DB), for its own packages.
	Native() any
}

// DB is an open database: its connection and the driver that runs every table family's
// queries on it. The drivers' Open functions return one.
type DB struct {
	Dialect Dialect
	// Driver runs the queries of every table family (see Driver).
	Driver Driver

	conn Conn
}

// NewDB assembles a DB; the drivers call it from their Open functions.
func NewDB(d Dialect, conn Conn, drv Driver) *DB { return &DB{Dialect: d, Driver: drv, conn: conn} }

// Name names the database for logs: "postgres" or "sqlite".
func (db *DB) Name() string { return string(db.Dialect) }

// Native returns the driver's own handle; only the driver packages use it.
func (db *DB) Native() any { return db.conn.Native() }

// Close releases every connection.
func (db *DB) Close() { db.conn.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.conn.Ping(ctx) }

// Exec runs a statement on the writer and returns the number of rows it affected.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return db.conn.Write().Exec(ctx, query, args...)
}

// Query runs a read-only query.
func (db *DB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return db.conn.Read().Query(ctx, query, args...)
}

// QueryRow runs a read-only query that returns at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return db.conn.Read().QueryRow(ctx, query, args...)
}

// Write returns a Querier on the writer, for single statements that write and return rows
// (INSERT … RETURNING) outside a transaction.
func (db *DB) Write() Querier { return db.conn.Write() }

// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
// Rollback runs even if ctx is cancelled meanwhile.
func (db *DB) InTx(ctx context.Context, fn func(tx Querier) error) error {
	return db.conn.InTx(ctx, fn)
}

// Micros converts a time to the stored form: microseconds since the Unix epoch.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts a stored time back, in UTC.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// NullMicros converts a nullable stored time; the zero time when NULL.
func NullMicros(us *int64) time.Time {
	if us == nil {
		return time.Time{}
	}
	return FromMicros(*us)
}

// Placeholders returns "($s,$s+1,…),(…)" for rows×cols values starting at $start, for
// multi-row INSERTs that both databases accept.
func Placeholders(rows, cols, start int) string {
	var b strings.Builder
	b.Grow(rows * cols * 5)
	n := start
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return fmt.Sprint(n)
}
