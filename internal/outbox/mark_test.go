package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// markPublished marks exactly the given events, across several chunks in one transaction
// (on PostgreSQL, one round trip), and leaves the pooled connections as it found them.
func TestMarkPublished(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		created := time.Now().Add(-time.Minute)
		n := 520 // more than one statement's chunk (500)
		entries := make([]Entry, n)
		ids := make([]string, n)
		for i := range entries {
			ids[i] = fmt.Sprintf("evt_%04d", i)
			entries[i] = Entry{SurveyID: "s", CreatedAt: created, Message: events.Message{
				ID: ids[i], Type: events.TypeSessionStarted, Subject: events.Subject("s", events.TypeSessionStarted),
				Payload: []byte(`{"id":"` + ids[i] + `"}`)}}
		}
		if err := Insert(ctx, db.Driver, created.Add(time.Hour), entries); err != nil {
			t.Fatal(err)
		}
		// All but the last three: more than one chunk.
		marked := ids[:n-3]
		now := time.Now()
		if err := markPublished(ctx, db, now, marked); err != nil {
			t.Fatal(err)
		}
		var published, attempts, leased int
		if err := db.QueryRow(ctx, `SELECT count(*), coalesce(sum(publish_attempts), 0), count(claimed_until)
			FROM events WHERE published_at = $1`, store.Micros(now)).Scan(&published, &attempts, &leased); err != nil {
			t.Fatal(err)
		}
		if published != len(marked) || attempts != len(marked) || leased != 0 {
			t.Fatalf("%d published (%d attempts, %d still leased), want %d", published, attempts, leased, len(marked))
		}
		var unpublished int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM events WHERE published_at IS NULL AND claimed_until IS NOT NULL`).Scan(&unpublished); err != nil {
			t.Fatal(err)
		}
		if unpublished != 3 {
			t.Fatalf("%d events left unpublished and leased, want 3", unpublished)
		}
		if db.Dialect == store.Postgres {
			// SET LOCAL ended with the transaction: no pooled connection keeps it.
			for i := 0; i < 4; i++ {
				var sc string
				if err := db.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
					t.Fatal(err)
				}
				if sc != "on" {
					t.Fatalf("synchronous_commit %q on a pooled connection after marking", sc)
				}
			}
		}
		// A cancelled context fails the mark and records nothing.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := markPublished(cctx, db, time.Now(), ids[n-3:]); err == nil {
			t.Fatal("marking with a cancelled context succeeded")
		}
		if err := db.QueryRow(ctx, `SELECT count(*) FROM events WHERE published_at IS NULL`).Scan(&unpublished); err != nil {
			t.Fatal(err)
		}
		if unpublished != 3 {
			t.Fatalf("%d events unpublished after a failed mark, want 3", unpublished)
		}
	})
}
