package dispatch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestClaimDue checks the retry scheduler's claim on both stores: due pending deliveries only,
// oldest first, no more per endpoint than its room, leases respected.
func TestClaimDue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		now := time.Now()
		us := store.Micros(now)
		insert := func(id, webhook, status string, next int64) {
			t.Helper()
			var n any
			if next != 0 {
				n = next
			}
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
				attempts, next_attempt_at, created_at, updated_at) VALUES ($1, 'evt', $2, 's', 't', 'u', $3, 1, $4, $5, $5)`,
				id, webhook, status, n, us); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 5 {
			insert(fmt.Sprintf("a%d", i), "wh_a", StatusPending, us-int64(10-i)*1000)
			insert(fmt.Sprintf("b%d", i), "wh_b", StatusPending, us-int64(10-i)*1000)
		}
		insert("c-future", "wh_c", StatusPending, us+int64(time.Hour/time.Microsecond))
		insert("c-done", "wh_c", StatusSucceeded, 0)
		insert("c-due", "wh_c", StatusPending, us)

		lease := store.Micros(now.Add(time.Minute))
		got, err := claimDue(ctx, db, us, lease, 3, 100, []endpointRoom{{id: "wh_a", free: 2}, {id: "wh_x", free: 0}})
		if err != nil {
			t.Fatal(err)
		}
		per := map[string][]string{}
		for _, c := range got {
			per[c.WebhookID] = append(per[c.WebhookID], c.ID)
		}
		if fmt.Sprint(per["wh_a"]) != "[a0 a1]" || len(per["wh_b"]) != 3 || fmt.Sprint(per["wh_c"]) != "[c-due]" {
			t.Fatalf("claimed %v; want a0 a1 (room 2), three of b (the cap), c-due", per)
		}
		// Leased rows are not claimed again; an endpoint without room gets nothing.
		got, err = claimDue(ctx, db, us, lease, 3, 100, []endpointRoom{{id: "wh_b", free: 0}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].ID != "a2" || got[1].ID != "a3" || got[2].ID != "a4" {
			t.Fatalf("second claim = %+v, want a2 a3 a4", got)
		}
		// The limit holds, and an expired lease frees a row again.
		later := store.Micros(now.Add(2 * time.Minute))
		got, err = claimDue(ctx, db, later, later+1000, 5, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "a0" || got[1].ID != "b0" {
			t.Fatalf("claim after the leases ran out = %+v, want a0 b0", got)
		}
		var leased int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE lease_until = $1", later+1000).Scan(&leased); err != nil {
			t.Fatal(err)
		}
		if leased != 2 {
			t.Errorf("%d rows carry the new lease, want 2", leased)
		}
	})
}
