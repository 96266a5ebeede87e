package drivertest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// claimDue claims through the driver, with times in stored microseconds.
func claimDue(ctx context.Context, db *store.DB, now, leaseUntil int64, perEndpoint, limit int, rooms []store.EndpointRoom) ([]store.Delivery, error) {
	return db.Driver.Deliveries().ClaimDue(ctx, store.DeliveryClaim{Now: store.FromMicros(now), LeaseUntil: store.FromMicros(leaseUntil),
		PerEndpoint: perEndpoint, Limit: limit, Rooms: rooms})
}

// testClaimDue checks the retry scheduler's claim on both stores: due pending deliveries only,
// oldest first, no more per endpoint than its room, leases respected.
func testClaimDue(t *testing.T, open Opener) {
	t.Run("due", func(t *testing.T) {
		t.Parallel()
		db := open(t)
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
			insert(fmt.Sprintf("a%d", i), "wh_a", store.DeliveryPending, us-int64(10-i)*1000)
			insert(fmt.Sprintf("b%d", i), "wh_b", store.DeliveryPending, us-int64(10-i)*1000)
		}
		insert("c-future", "wh_c", store.DeliveryPending, us+int64(time.Hour/time.Microsecond))
		insert("c-done", "wh_c", store.DeliverySucceeded, 0)
		insert("c-due", "wh_c", store.DeliveryPending, us)

		lease := store.Micros(now.Add(time.Minute))
		got, err := claimDue(ctx, db, us, lease, 3, 100, []store.EndpointRoom{{WebhookID: "wh_a", Free: 2}, {WebhookID: "wh_x", Free: 0}})
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
		got, err = claimDue(ctx, db, us, lease, 3, 100, []store.EndpointRoom{{WebhookID: "wh_b", Free: 0}})
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

// BacklogRow is a deliveries row of a generated backlog.
type BacklogRow struct {
	ID, Webhook, Status string
	Next, Lease         int64 // 0: NULL
}

// InsertBacklog writes rows as deliveries, in statements of up to 500 rows.
func InsertBacklog(t testing.TB, db *store.DB, rows []BacklogRow) {
	t.Helper()
	const cols = 6
	for i := 0; i < len(rows); i += 500 {
		chunk := rows[i:min(i+500, len(rows))]
		args := make([]any, 0, cols*len(chunk))
		for _, r := range chunk {
			var next, lease any
			if r.Next != 0 {
				next = r.Next
			}
			if r.Lease != 0 {
				lease = r.Lease
			}
			args = append(args, r.ID, r.Webhook, r.Status, next, lease, int64(1))
		}
		// Placeholders in the order (id, webhook_id, status, next_attempt_at, lease_until, created_at).
		if _, err := db.Exec(context.Background(), `INSERT INTO deliveries (id, webhook_id, status, next_attempt_at,
			lease_until, created_at, event_id, survey_id, type, url, attempts, updated_at)
			SELECT column1, column2, column3, column4, column5, column6, 'evt_' || column1, 's', 't', 'u', 1, column6
			FROM (VALUES `+typedRows(len(chunk))+`) AS v`, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// typedRows is n VALUES rows for InsertBacklog, typed so that NULLs work on PostgreSQL.
func typedRows(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		p := 6*i + 1
		fmt.Fprintf(&b, "(CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT))",
			p, p+1, p+2, p+3, p+4, p+5)
	}
	return b.String()
}

// GenBacklog builds a backlog over endpoints: per endpoint up to perEndpoint rows, most due
// (some sharing a due time, so that the id breaks ties), some due later, some leased by
// another dispatcher, some finished.
func GenBacklog(seed uint64, endpoints, perEndpoint int, now int64) []BacklogRow {
	r := rand.New(rand.NewPCG(seed, 1))
	var rows []BacklogRow
	for e := range endpoints {
		wh := fmt.Sprintf("wh_%03d", e)
		for i := range r.IntN(perEndpoint + 1) {
			row := BacklogRow{ID: fmt.Sprintf("d_%03d_%05d", e, i), Webhook: wh, Status: store.DeliveryPending}
			// Due times on a coarse grid: ties across and within endpoints.
			row.Next = now - int64(r.IntN(500))*1000
			switch k := r.IntN(20); {
			case k == 0:
				row.Next = now + int64(1+r.IntN(1000))*1000
			case k == 1:
				row.Lease = now + 60_000_000
			case k == 2:
				row.Lease = now - 1 // an expired lease
			case k == 3:
				row.Status, row.Next = store.DeliverySucceeded, 0
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// claimModel is what claimDue must do, computed over the rows in memory.
func claimModel(rows []BacklogRow, now int64, perEndpoint, limit int, rooms []store.EndpointRoom) []string {
	room := map[string]int{}
	for _, r := range rooms {
		room[r.WebhookID] = r.Free
	}
	byEndpoint := map[string][]BacklogRow{}
	for _, r := range rows {
		if r.Status == store.DeliveryPending && r.Next <= now && (r.Lease == 0 || r.Lease < now) {
			byEndpoint[r.Webhook] = append(byEndpoint[r.Webhook], r)
		}
	}
	order := func(a, b BacklogRow) int { return cmp.Or(cmp.Compare(a.Next, b.Next), strings.Compare(a.ID, b.ID)) }
	var all []BacklogRow
	for wh, due := range byEndpoint {
		n := perEndpoint
		if free, ok := room[wh]; ok {
			n = free
		}
		slices.SortFunc(due, order)
		all = append(all, due[:min(n, len(due))]...)
	}
	slices.SortFunc(all, order)
	ids := []string{}
	for _, r := range all[:min(limit, len(all))] {
		ids = append(ids, r.ID)
	}
	return ids
}

// testClaimDueBacklog checks the claim against claimModel on both stores, claim after claim
// until a backlog of ~6,000 rows over 40 endpoints is drained: due pending deliveries only,
// leases respected, no more per endpoint than its room, the limit, oldest due first (ties by
// id), and every due delivery leased exactly once.
func testClaimDueBacklog(t *testing.T, open Opener) {
	t.Run("backlog", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		now := store.Micros(time.Now())
		rows := GenBacklog(10, 40, 300, now)
		InsertBacklog(t, db, rows)
		lease := now + 30_000_000
		rooms := []store.EndpointRoom{{WebhookID: "wh_000", Free: 0}, {WebhookID: "wh_001", Free: 1}, {WebhookID: "wh_002", Free: 3}, {WebhookID: "wh_unknown", Free: 2}}
		byID := map[string]*BacklogRow{}
		for i := range rows {
			byID[rows[i].ID] = &rows[i]
		}
		leased := 0
		for round := 0; ; round++ {
			want := claimModel(rows, now, 7, 100, rooms)
			got, err := claimDue(ctx, db, now, lease, 7, 100, rooms)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, c := range got {
				ids = append(ids, c.ID)
				if r := byID[c.ID]; c.WebhookID != r.Webhook || store.Micros(c.NextAttemptAt) != r.Next || c.EventID != "evt_"+c.ID {
					t.Fatalf("round %d: claimed %+v, stored as %+v", round, c, *r)
				}
				byID[c.ID].Lease = lease
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("round %d: claimed %v\nwant %v", round, ids, want)
			}
			leased += len(ids)
			if len(ids) == 0 {
				break
			}
		}
		var dueRows, onWh0 int
		for _, r := range rows {
			if r.Status == store.DeliveryPending && r.Next <= now && (r.Lease == lease) {
				dueRows++
			}
			if r.Webhook == "wh_000" && r.Lease == lease {
				onWh0++
			}
		}
		if leased != dueRows || onWh0 != 0 {
			t.Fatalf("leased %d rows (%d of the endpoint without room), model says %d", leased, onWh0, dueRows)
		}
		var stored int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE lease_until = $1", lease).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != leased {
			t.Errorf("%d rows carry the lease, %d were claimed", stored, leased)
		}
		// Once the leases run out, the same rows come back, oldest first.
		later := lease + 1
		for i := range rows {
			if rows[i].Lease == lease {
				rows[i].Lease = 0
			}
		}
		got, err := claimDue(ctx, db, later, later+1000, 7, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := claimModel(rows, later, 7, 100, nil)
		ids := []string{}
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("after the leases ran out: claimed %v\nwant %v", ids, want)
		}
	})
}

// testClaimDueConcurrentDrain: four claimers at once over a backlog of ~4,000 due rows on 50
// endpoints keep claiming until it is drained; every due row is leased exactly once.
func testClaimDueConcurrentDrain(t *testing.T, open Opener) {
	t.Run("concurrent drain", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		now := store.Micros(time.Now())
		var rows []BacklogRow
		for i := range 4000 {
			rows = append(rows, BacklogRow{ID: fmt.Sprintf("d_%05d", i), Webhook: fmt.Sprintf("wh_%02d", i%50),
				Status: store.DeliveryPending, Next: now - int64(i%97)*1000})
		}
		InsertBacklog(t, db, rows)
		var (
			mu      sync.Mutex
			claims  = map[string]int{}
			wg      sync.WaitGroup
			claimed atomic.Int64
		)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A claimer that sees nothing claimable stops; the others finish the backlog.
				for {
					got, err := claimDue(ctx, db, now, now+600_000_000, 3+w, 40, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, c := range got {
						claims[c.ID]++
					}
					mu.Unlock()
					claimed.Add(int64(len(got)))
				}
			}()
		}
		wg.Wait()
		// A claimer stops early only when the others hold everything that is left.
		for {
			got, err := claimDue(ctx, db, now, now+600_000_000, 5, 40, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			for _, c := range got {
				claims[c.ID]++
			}
		}
		if len(claims) != len(rows) {
			t.Errorf("%d of %d rows claimed", len(claims), len(rows))
		}
		for id, n := range claims {
			if n != 1 {
				t.Errorf("%s claimed %d times", id, n)
			}
		}
	})
}
