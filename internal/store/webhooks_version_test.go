package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// Migration 060: every change that decides which endpoints get an event, or how it is signed,
// moves the webhooks version in its own transaction, whoever makes it; the failure counters the
// dispatcher keeps, and statements that change no row, leave it alone.
func TestWebhooksVersionMoves(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		version := func() int64 {
			t.Helper()
			var v int64
			if err := db.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		now := store.Micros(time.Now())
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.Exec(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec("INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s', 'S', $1, $1)", now)
		exec("INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('other', 'O', $1, $1)", now)
		for _, id := range []string{"w1", "w2", "w3"} {
			exec(`INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
				VALUES ($1, 's', 'https://example.org/h', 'survey.session.submitted', 'whsec_a', $2, $2)`, id, now)
		}

		// A change rolled back leaves the version as it was.
		before := version()
		err := db.InTx(ctx, func(tx store.Querier) error {
			if _, err := tx.Exec(ctx, "UPDATE webhooks SET url = 'https://example.org/x' WHERE id = 'w3'"); err != nil {
				return err
			}
			return context.Canceled
		})
		if err != context.Canceled {
			t.Fatal(err)
		}
		if after := version(); after != before {
			t.Errorf("a rolled-back change moved the version %d → %d", before, after)
		}

		for _, c := range []struct {
			name  string
			sql   string
			moves bool
		}{
			{"create", `INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
				VALUES ('w4', 's', 'https://example.org/h', 'survey.session.submitted', 'whsec_a', 1, 1)`, true},
			{"change the URL", "UPDATE webhooks SET url = 'https://example.org/other' WHERE id = 'w1'", true},
			{"change the event types", "UPDATE webhooks SET events = 'survey.session.started' WHERE id = 'w1'", true},
			{"disable", "UPDATE webhooks SET disabled = TRUE, disabled_reason = 'by hand' WHERE id = 'w1'", true},
			{"re-enable", "UPDATE webhooks SET disabled = FALSE, disabled_reason = '' WHERE id = 'w1'", true},
			{"rotate the secret", "UPDATE webhooks SET previous_secret = secret, previous_secret_until = 5, secret = 'whsec_b' WHERE id = 'w1'", true},
			{"change the signature scheme (migration 110)", "UPDATE webhooks SET signature_scheme = 'v1a' WHERE id = 'w1'", true},
			{"set a rate limit (migration 150)", "UPDATE webhooks SET rate_limit = 20 WHERE id = 'w1'", true},
			{"clear the rate limit", "UPDATE webhooks SET rate_limit = NULL WHERE id = 'w1'", true},
			{"delete", "DELETE FROM webhooks WHERE id = 'w4'", true},
			{"change the survey's jwtSecret", "UPDATE surveys SET jwt_secret = 'a shared secret' WHERE id = 's'", true},
			{"count failures", "UPDATE webhooks SET consecutive_failures = 3, first_failure_at = 7 WHERE id = 'w2'", false},
			{"change the description", "UPDATE webhooks SET description = 'x', updated_at = 9 WHERE id = 'w2'", false},
			{"delete nothing", "DELETE FROM webhooks WHERE id = 'none'", false},
			{"disable nothing", "UPDATE webhooks SET disabled = TRUE WHERE id = 'none'", false},
			{"change another survey's name", "UPDATE surveys SET name = 'N' WHERE id = 'other'", false},
			{"delete the survey and its webhooks", "DELETE FROM surveys WHERE id = 's'", true},
			{"delete a survey without webhooks", "DELETE FROM surveys WHERE id = 'other'", false},
		} {
			before := version()
			exec(c.sql)
			after := version()
			if moved := after > before; moved != c.moves {
				t.Errorf("%s: version %d → %d, want moved = %v", c.name, before, after, c.moves)
			}
		}

	})
}
