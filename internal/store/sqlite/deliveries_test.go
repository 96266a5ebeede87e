package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/drivertest"
	"github.com/dispatch24/dispatch24/internal/store/sqlite"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

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
			young := drivertest.GenBacklog(4, 1, 50, now)
			for i := range young {
				young[i].ID, young[i].Webhook = "young_"+young[i].ID, "wh_young"
			}
			drivertest.InsertBacklog(t, db, young)
			if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		drivertest.InsertBacklog(t, db, drivertest.GenBacklog(3, 20, 200, now))
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
			{sqlite.ClaimEndpointsSQL, nil},
			{sqlite.ClaimOldestSQL, []any{"wh_001", now, 8}},
			{fmt.Sprintf(sqlite.ClaimLeaseSQL, strings.Join(ids, ",")), args},
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
