// Package store is the contract between Dispatch24's owners of tables and the databases: the
// Driver interface with one interface per table family (driver.go), the record types of each
// family in the domain's words (time.Time, not the stored microseconds), the numbered
// migrations, and the error vocabulary callers branch on (ErrNotFound, ErrConflict).
//
// Each database implements the whole Driver once, in the shape of River's riverdriver:
// internal/store/postgres (pgx/v5, the only importer of pgx) and internal/store/sqlite (the
// pure-Go modernc driver), with the query text both accept in internal/store/sqlcommon; a
// driver overrides only what differs (row locking with SKIP LOCKED, pgx batches, index hints).
// internal/store/drivertest is the one suite both pass; internal/archtest keeps dialect
// questions, pgx and SQL out of every other package.
//
// Times are stored as BIGINT microseconds since the Unix epoch (Micros, FromMicros), booleans as
// booleans, JSON documents as jsonb in PostgreSQL and TEXT in SQLite.
//
// SQLite runs in WAL mode with synchronous=FULL (a commit is durable when it returns) through
// one writer connection and a pool of read-only connections. PostgreSQL uses one pool.
//
// DB's raw Exec, Query and QueryRow remain for migrations and for tests that set up or check
// rows; production code outside the drivers goes through DB.Driver.
package store
