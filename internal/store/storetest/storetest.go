// Package storetest gives tests a fresh, migrated database of each dialect, so one test suite
// runs against both drivers (the conformance suite of every concern).
//
// PostgreSQL comes from TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable); each test gets a schema of its own,
// dropped at the end. A PostgreSQL that does not answer fails the test: it is never skipped.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/sqlite"
)

// DefaultDatabaseURL is used when TEST_DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DatabaseURL returns the PostgreSQL URL tests use.
func DatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// Each runs fn once per dialect as subtests "sqlite" and "postgres", each with a fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a migrated database in a temporary directory, closed at the end of the test.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("opening SQLite: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// Postgres returns a migrated database in a schema of its own, dropped at the end of the test.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	u := PostgresURL(t)
	db, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("opening PostgreSQL schema: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// PostgresURL creates an empty schema for the test and returns a URL whose connections use it
// (for tests that start whole binaries). The schema is dropped at the end of the test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	base := DatabaseURL()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if err := postgres.ExecURL(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("PostgreSQL at TEST_DATABASE_URL (%s) does not answer or refuses CREATE SCHEMA: %v — the PostgreSQL tests need it", base, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.ExecURL(ctx, base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
