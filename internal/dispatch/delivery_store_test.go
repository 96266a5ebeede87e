package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// backlogRow is a deliveries row of a generated backlog.
type backlogRow struct {
	id, webhook, status string
	next, lease         int64 // 0: NULL
}

// insertBacklog writes rows as deliveries, in statements of up to 500 rows.
func insertBacklog(t testing.TB, db *store.DB, rows []backlogRow) {
	t.Helper()
	const cols = 6
	for i := 0; i < len(rows); i += 500 {
		chunk := rows[i:min(i+500, len(rows))]
		args := make([]any, 0, cols*len(chunk))
		for _, r := range chunk {
			var next, lease any
			if r.next != 0 {
				next = r.next
			}
			if r.lease != 0 {
				lease = r.lease
			}
			args = append(args, r.id, r.webhook, r.status, next, lease, int64(1))
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

// typedRows is n VALUES rows for insertBacklog, typed so that NULLs work on PostgreSQL.
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

// genBacklog builds a backlog over endpoints: per endpoint up to perEndpoint rows, most due
// (some sharing a due time, so that the id breaks ties), some due later, some leased by
// another dispatcher, some finished.
func genBacklog(seed uint64, endpoints, perEndpoint int, now int64) []backlogRow {
	r := rand.New(rand.NewPCG(seed, 1))
	var rows []backlogRow
	for e := range endpoints {
		wh := fmt.Sprintf("wh_%03d", e)
		for i := range r.IntN(perEndpoint + 1) {
			row := backlogRow{id: fmt.Sprintf("d_%03d_%05d", e, i), webhook: wh, status: StatusPending}
			// Due times on a coarse grid: ties across and within endpoints.
			row.next = now - int64(r.IntN(500))*1000
			switch k := r.IntN(20); {
			case k == 0:
				row.next = now + int64(1+r.IntN(1000))*1000
			case k == 1:
				row.lease = now + 60_000_000
			case k == 2:
				row.lease = now - 1 // an expired lease
			case k == 3:
				row.status, row.next = StatusSucceeded, 0
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// claimModel is what claimDue must do, computed over the rows in memory.
func claimModel(rows []backlogRow, now int64, perEndpoint, limit int, rooms []endpointRoom) []string {
	room := map[string]int{}
	for _, r := range rooms {
		room[r.id] = r.free
	}
	byEndpoint := map[string][]backlogRow{}
	for _, r := range rows {
		if r.status == StatusPending && r.next <= now && (r.lease == 0 || r.lease < now) {
			byEndpoint[r.webhook] = append(byEndpoint[r.webhook], r)
		}
	}
	order := func(a, b backlogRow) int { return cmp.Or(cmp.Compare(a.next, b.next), strings.Compare(a.id, b.id)) }
	var all []backlogRow
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
		ids = append(ids, r.id)
	}
	return ids
}

// TestClaimDueBacklog checks the claim against claimModel on both stores, claim after claim
// until a backlog of ~6,000 rows over 40 endpoints is drained: due pending deliveries only,
// leases respected, no more per endpoint than its room, the limit, oldest due first (ties by
// id), and every due delivery leased exactly once.
func TestClaimDueBacklog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		now := store.Micros(time.Now())
		rows := genBacklog(10, 40, 300, now)
		insertBacklog(t, db, rows)
		lease := now + 30_000_000
		rooms := []endpointRoom{{id: "wh_000", free: 0}, {id: "wh_001", free: 1}, {id: "wh_002", free: 3}, {id: "wh_unknown", free: 2}}
		byID := map[string]*backlogRow{}
		for i := range rows {
			byID[rows[i].id] = &rows[i]
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
				if r := byID[c.ID]; c.WebhookID != r.webhook || c.due != r.next || c.EventID != "evt_"+c.ID {
					t.Fatalf("round %d: claimed %+v, stored as %+v", round, c, *r)
				}
				byID[c.ID].lease = lease
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
			if r.status == StatusPending && r.next <= now && (r.lease == lease) {
				dueRows++
			}
			if r.webhook == "wh_000" && r.lease == lease {
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
			if rows[i].lease == lease {
				rows[i].lease = 0
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

// TestClaimDueConcurrentDrain: four claimers at once over a backlog of ~4,000 due rows on 50
// endpoints keep claiming until it is drained; every due row is leased exactly once.
func TestClaimDueConcurrentDrain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		now := store.Micros(time.Now())
		var rows []backlogRow
		for i := range 4000 {
			rows = append(rows, backlogRow{id: fmt.Sprintf("d_%05d", i), webhook: fmt.Sprintf("wh_%02d", i%50),
				status: StatusPending, next: now - int64(i%97)*1000})
		}
		insertBacklog(t, db, rows)
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

// errRollback ends a test transaction without keeping its writes.
var errRollback = errors.New("rollback")

// TestClaimDueReadsBoundedRows runs the PostgreSQL claim under EXPLAIN ANALYZE over a backlog
// of 20,000 due rows on 20 endpoints (and as many finished deliveries), with no statistics, with statistics of a small table
// (stale), and with fresh statistics: every scan of deliveries must be an index scan on
// deliveries_pending_idx or the primary key, and the rows read must be bounded by the
// endpoints and the batch (not the backlog). The claim before migration 070 read every due
// row, and under stale statistics read them once per row.
func TestClaimDueReadsBoundedRows(t *testing.T) {
	for _, stats := range []string{"none", "stale", "fresh"} {
		t.Run(stats, func(t *testing.T) {
			t.Parallel()
			db := storetest.Postgres(t)
			ctx := context.Background()
			now := store.Micros(time.Now())
			if stats == "stale" {
				// Statistics of a young table: one endpoint, half its deliveries finished.
				if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
					attempts, next_attempt_at, created_at, updated_at)
					SELECT 'old' || g, 'e', 'wh_old', 's', 't', 'u', CASE WHEN g % 2 = 0 THEN 'succeeded' ELSE 'pending' END,
						1, CASE WHEN g % 2 = 0 THEN NULL ELSE $1::bigint + g END, 1, 1
					FROM generate_series(1, 50) g`, now+3600_000_000); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(ctx, "ANALYZE deliveries"); err != nil {
					t.Fatal(err)
				}
			}
			const endpoints, perEndpoint, limit, leased = 20, 8, 100, 5
			// 20,000 due rows; each endpoint's 5 oldest are leased by another dispatcher.
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
				attempts, next_attempt_at, lease_until, created_at, updated_at)
				SELECT 'd' || g, 'e' || g, 'wh_' || (g % $3::int), 's', 't', 'u', 'pending', 1, $1::bigint - 20000 + g / $3::int,
					CASE WHEN g / $3::int < $4::int THEN $2::bigint END, 1, 1
				FROM generate_series(0, 19999) g`, now, now+60_000_000, endpoints, leased); err != nil {
				t.Fatal(err)
			}
			// And the history: 20,000 finished deliveries.
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
				attempts, created_at, updated_at)
				SELECT 'h' || g, 'e' || g, 'wh_' || (g % $1::int), 's', 't', 'u', 'succeeded', 1, 1, 1
				FROM generate_series(0, 19999) g`, endpoints); err != nil {
				t.Fatal(err)
			}
			if stats == "fresh" {
				if _, err := db.Exec(ctx, "ANALYZE deliveries"); err != nil {
					t.Fatal(err)
				}
			}
			var plan []byte
			err := db.InTx(ctx, func(tx store.Querier) error {
				if _, err := tx.Exec(ctx, claimSettingsSQL); err != nil {
					return err
				}
				args := claimArgs(now, now+30_000_000, perEndpoint, limit, nil)
				if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+claimDuePostgresSQL, args...).Scan(&plan); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			var top []struct {
				Plan planNode `json:"Plan"`
			}
			if err := json.Unmarshal(plan, &top); err != nil {
				t.Fatal(err)
			}
			read := 0.0
			top[0].Plan.walk(func(n *planNode) {
				if n.Relation != "deliveries" || n.NodeType == "ModifyTable" {
					return
				}
				if (n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan") ||
					(n.Index != "deliveries_pending_idx" && n.Index != "deliveries_pkey") {
					t.Errorf("%s on deliveries (index %q): the claim must read deliveries through deliveries_pending_idx or its key",
						n.NodeType, n.Index)
				}
				read += (n.ActualRows + n.RemovedByFilter) * n.ActualLoops
			})
			if got := top[0].Plan.ActualRows; got != limit {
				t.Errorf("claimed %v rows, want %d", got, limit)
			}
			// Per endpoint: a probe for the next endpoint, up to perEndpoint rows read twice
			// (the oldest, then locked) past its leased ones; then the limit by key.
			bound := float64(endpoints*(2+2*(perEndpoint+leased)) + limit + 10)
			if read > bound {
				t.Errorf("the claim read %.0f rows of deliveries, more than %.0f: its cost follows the backlog\n%s", read, bound, plan)
			}
			t.Logf("%s statistics: read %.0f rows (bound %.0f)", stats, read, bound)
		})
	}
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType        string     `json:"Node Type"`
	Relation        string     `json:"Relation Name"`
	Index           string     `json:"Index Name"`
	ActualRows      float64    `json:"Actual Rows"`
	ActualLoops     float64    `json:"Actual Loops"`
	RemovedByFilter float64    `json:"Rows Removed by Filter"`
	Plans           []planNode `json:"Plans"`
}

func (n *planNode) walk(fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}

// TestClaimDueSQLitePlans checks the SQLite claim's statements with no statistics, with
// statistics of a small table (stale) and after ANALYZE: every access to deliveries goes
// through deliveries_pending_idx (or the key for the lease) and no statement sorts, so each
// stops after the rows it needs.
func TestClaimDueSQLitePlans(t *testing.T) {
	t.Parallel()
	for _, stats := range []string{"none", "stale", "analyzed"} {
		db := storetest.SQLite(t)
		ctx := context.Background()
		now := store.Micros(time.Now())
		if stats == "stale" {
			young := genBacklog(4, 1, 50, now)
			for i := range young {
				young[i].id, young[i].webhook = "young_"+young[i].id, "wh_young"
			}
			insertBacklog(t, db, young)
			if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		insertBacklog(t, db, genBacklog(3, 20, 200, now))
		if stats == "analyzed" {
			if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		ids := make([]string, 100)
		args := []any{now}
		for i := range ids {
			ids[i] = fmt.Sprintf("$%d", i+2)
			args = append(args, fmt.Sprintf("d_001_%05d", i))
		}
		statements := []struct {
			sql  string
			args []any
		}{
			{claimEndpointsSQLiteSQL, nil},
			{claimOldestSQLiteSQL, []any{"wh_001", now, 8}},
			{fmt.Sprintf(claimLeaseSQLiteSQL, strings.Join(ids, ",")), args},
		}
		for _, st := range statements {
			// On the writer: it plans the claim, with the statistics it has loaded.
			rows, err := db.Write().Query(ctx, "EXPLAIN QUERY PLAN "+st.sql, st.args...)
			if err != nil {
				t.Fatal(err)
			}
			var details []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				details = append(details, detail)
			}
			rows.Close()
			for _, d := range details {
				onDeliveries := strings.HasPrefix(d, "SCAN deliveries") || strings.HasPrefix(d, "SEARCH deliveries") ||
					strings.HasPrefix(d, "SCAN d ") || strings.HasPrefix(d, "SEARCH d ")
				if strings.Contains(d, "TEMP B-TREE") ||
					onDeliveries && !strings.Contains(d, "INDEX deliveries_pending_idx") && !strings.Contains(d, "sqlite_autoindex_deliveries_1") {
					t.Errorf("%s statistics: %q in the plan of\n%s\n%s", stats, d, st.sql, strings.Join(details, "\n"))
				}
			}
		}
	}
}
