// Package sqlcommon holds the query text and row scanning that PostgreSQL and SQLite share, one
// file per table family. Both drivers (internal/store/postgres, internal/store/sqlite) embed
// these implementations and override only what differs between the databases (row locking,
// batching, index hints). Only the driver packages import it.
package sqlcommon
