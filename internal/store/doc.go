// Package store is the database layer shared by every part of Dispatch24: one DB type over two
// drivers (PostgreSQL through pgx/v5's pool, embedded SQLite through the pure-Go modernc driver),
// embedded numbered migrations, and the error vocabulary callers branch on.
//
// Queries are written once, in the SQL both databases accept: $n placeholders, INSERT … ON
// CONFLICT, RETURNING, partial indexes. Times are BIGINT microseconds since the Unix epoch
// (Micros, FromMicros), booleans are bound as Go bools, JSON documents are bound as []byte
// (jsonb in PostgreSQL, TEXT in SQLite). The few places where the dialects differ ask the
// Dialect (row locking with SKIP LOCKED exists only in PostgreSQL; SQLite has one writer).
//
// Each concern keeps its own queries next to its code (internal/auth, internal/survey, …) and
// runs them through DB; the conformance tests of every concern run against both drivers with
// storetest.Each.
//
// SQLite runs in WAL mode with synchronous=FULL (a commit is durable when it returns) through
// one writer connection and a pool of read-only connections: Exec, InTx and Write go to the
// writer, Query and QueryRow to the readers. PostgreSQL uses one pool for everything.
package store
