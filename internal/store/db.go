package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// DB is a connection pool to one of the two databases.
type DB struct {
	Dialect Dialect

	pg *pgxpool.Pool

	sqlw *sql.DB // SQLite: the one writer connection
	sqlr *sql.DB // SQLite: read-only connections
}

// Pool returns the PostgreSQL pool, or nil on SQLite (for COPY and other pgx-only paths).
func (db *DB) Pool() *pgxpool.Pool { return db.pg }

// Close releases every connection.
func (db *DB) Close() {
	if db.pg != nil {
		db.pg.Close()
	}
	if db.sqlw != nil {
		db.sqlw.Close()
		db.sqlr.Close()
	}
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if db.pg != nil {
		return db.pg.Ping(ctx)
	}
	var one int
	return db.sqlr.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Exec runs a statement on the writer and returns the number of rows it affected.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return db.Write().Exec(ctx, query, args...)
}

// Query runs a read-only query.
func (db *DB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	if db.pg != nil {
		return pgQuerier{db.pg}.Query(ctx, query, args...)
	}
	return sqlQuerier{db.sqlr}.Query(ctx, query, args...)
}

// QueryRow runs a read-only query that returns at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) Row {
	if db.pg != nil {
		return pgQuerier{db.pg}.QueryRow(ctx, query, args...)
	}
	return sqlQuerier{db.sqlr}.QueryRow(ctx, query, args...)
}

// Write returns a Querier on the writer, for single statements that write and return rows
// (INSERT … RETURNING) outside a transaction.
func (db *DB) Write() Querier {
	if db.pg != nil {
		return pgQuerier{db.pg}
	}
	return sqlQuerier{db.sqlw}
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
// Rollback runs even if ctx is cancelled meanwhile.
func (db *DB) InTx(ctx context.Context, fn func(tx Querier) error) error {
	if db.pg != nil {
		tx, err := db.pg.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin: %w", mapErr(err))
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
		if err := fn(pgQuerier{tx}); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", mapErr(err))
		}
		return nil
	}
	tx, err := db.sqlw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(sqlQuerier{tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// pgQuerier adapts a pool, a connection or a transaction of pgx.
type pgQuerier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (p pgQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

func (p pgQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := p.q.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return pgRows{rows}, nil
}

func (p pgQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return errRow{p.q.QueryRow(ctx, query, args...)}
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Err() error { return mapErr(r.Rows.Err()) }

func (r pgRows) Scan(dest ...any) error { return mapErr(r.Rows.Scan(dest...)) }

// sqlQuerier adapts database/sql for SQLite.
type sqlQuerier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (s sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
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

func (s sqlQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return sqlRows{rows}, nil
}

func (s sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return errRow{s.q.QueryRowContext(ctx, query, args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func (r sqlRows) Err() error { return mapErr(r.Rows.Err()) }

func (r sqlRows) Scan(dest ...any) error { return mapErr(r.Rows.Scan(dest...)) }

type errRow struct{ Row }

func (r errRow) Scan(dest ...any) error { return mapErr(r.Row.Scan(dest...)) }

// mapErr turns driver errors callers branch on into ErrNotFound and ErrConflict, keeping the
// original in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		switch sqlErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
	}
	return err
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
