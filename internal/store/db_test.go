package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 10, 15, 0, 123456000, time.UTC)

		t.Run("roundtrip", func(t *testing.T) {
			_, err := db.Exec(ctx, `INSERT INTO surveys (id, name, allow_gen_users, jwt_secret, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5)`, "s1", "Survey", true, nil, store.Micros(now))
			if err != nil {
				t.Fatal(err)
			}
			var (
				name    string
				allow   bool
				secret  *string
				created int64
			)
			err = db.QueryRow(ctx, "SELECT name, allow_gen_users, jwt_secret, created_at FROM surveys WHERE id = $1", "s1").
				Scan(&name, &allow, &secret, &created)
			if err != nil {
				t.Fatal(err)
			}
			if name != "Survey" || !allow || secret != nil || !store.FromMicros(created).Equal(now) {
				t.Fatalf("got %q %v %v %v", name, allow, secret, store.FromMicros(created))
			}
		})

		t.Run("json", func(t *testing.T) {
			doc := []byte(`{"a":[1,2,{"b":"ü"}]}`)
			_, err := db.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, "e1", "t", "s", "subj", doc, store.Micros(now))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := db.QueryRow(ctx, "SELECT payload FROM events WHERE id = $1", "e1").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0] != '{' {
				t.Fatalf("payload %q", got)
			}
		})

		t.Run("not found", func(t *testing.T) {
			var name string
			err := db.QueryRow(ctx, "SELECT name FROM surveys WHERE id = $1", "nope").Scan(&name)
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("want ErrNotFound, got %v", err)
			}
		})

		t.Run("conflict", func(t *testing.T) {
			q := `INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ($1, $2, 'x', 0, 0)`
			if _, err := db.Exec(ctx, q, "u1", "a@example.org"); err != nil {
				t.Fatal(err)
			}
			_, err := db.Exec(ctx, q, "u2", "a@example.org")
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("want ErrConflict, got %v", err)
			}
			_, err = db.Exec(ctx, q, "u1", "b@example.org")
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("want ErrConflict on primary key, got %v", err)
			}
		})

		t.Run("rollback", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx store.Querier) error {
				if _, err := tx.Exec(ctx, `INSERT INTO users (id, email, password_hash, created_at, updated_at)
					VALUES ('r1', 'r@example.org', 'x', 0, 0)`); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("want boom, got %v", err)
			}
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM users WHERE id = 'r1'").Scan(&n); err != nil || n != 0 {
				t.Fatalf("rolled-back row visible: n=%d err=%v", n, err)
			}
		})

		t.Run("multi-row insert", func(t *testing.T) {
			q := "INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms) VALUES " +
				store.Placeholders(300, 4, 1)
			args := make([]any, 0, 300*4)
			for i := 0; i < 300; i++ {
				args = append(args, fmt.Sprintf("d%d", i), i+1, int64(0), 7)
			}
			if _, err := db.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM delivery_attempts").Scan(&n); err != nil || n != 300 {
				t.Fatalf("n=%d err=%v", n, err)
			}
		})

		t.Run("concurrent writers", func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := 0; i < 40; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					errs <- db.InTx(ctx, func(tx store.Querier) error {
						var n int
						if err := tx.QueryRow(ctx, "SELECT count(*) FROM signin_failures WHERE key = 'k'").Scan(&n); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, "INSERT INTO signin_failures (key, failed_at) VALUES ('k', $1)", int64(n))
						return err
					})
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})

		t.Run("migrate is idempotent", func(t *testing.T) {
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func TestPlaceholders(t *testing.T) {
	t.Parallel()
	if got, want := store.Placeholders(2, 3, 4), "($4,$5,$6),($7,$8,$9)"; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if got, want := store.Placeholders(1, 12, 1), "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}
