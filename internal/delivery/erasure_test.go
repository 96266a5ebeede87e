package delivery_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/ids"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// A replay (or a read) of a delivery that is no longer stored says why: 410 delivery_purged
// when its id dates it before the retention horizon or inside a deleted survey's lifetime,
// 404 delivery_not_found when nothing could have deleted it; a replay of a delivery whose
// event was erased answers 410 event_erased and enqueues nothing.
func TestReplayOfErasedAndPurgedDeliveries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, 100)
		now := time.Now().UTC()
		svc, err := delivery.NewService(delivery.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Retention: 24 * time.Hour, NowFunc: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		b.rt = httpapi.NewRouter(testAuth{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		svc.Register(b.rt)

		expectProblem := func(t *testing.T, method, path string, status int, code string) {
			t.Helper()
			got, body, raw := b.do(t, asAdmin, method, path, nil)
			if got != status || body["code"] != code {
				t.Fatalf("%s %s = %d %s; want %d %s", method, path, got, raw, status, code)
			}
		}

		// An erased event: the delivery is shown, its replay refused.
		ev := ids.New("evt_")
		created := now.Add(-time.Hour).Truncate(time.Millisecond)
		if err := db.Driver.Events().InsertPublished(t.Context(), store.Event{ID: ev, Type: "survey.session.submitted",
			SurveyID: "s1", UserID: "usr_gone", Subject: "x", Payload: []byte(`{"recall":"private"}`), CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		erasedID := delivery.DeliveryID(ev, "wh1")
		insert(t, db, []row{{id: erasedID, event: ev, webhook: "wh1", survey: "s1", typ: "survey.session.submitted",
			status: delivery.StatusFailed, created: created}})
		if _, err := db.Driver.Events().EraseUser(t.Context(), "usr_gone", now); err != nil {
			t.Fatal(err)
		}
		if got, _, raw := b.do(t, asAdmin, "GET", "/api/admin/deliveries/"+erasedID, nil); got != http.StatusOK {
			t.Fatalf("reading the delivery of an erased event: %d %s", got, raw)
		}
		expectProblem(t, "POST", "/api/admin/deliveries/"+erasedID+"/replay", http.StatusGone, "event_erased")
		var n int
		if err := db.QueryRow(t.Context(), `SELECT count(*) FROM deliveries WHERE replay_of = $1`, erasedID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d replays enqueued, %v", n, err)
		}

		// Before the retention horizon: purged.
		old := delivery.DeliveryID(ids.New("evt_"), "wh1")
		if at, ok := delivery.CreatedAt(old); !ok || at.Before(now.Add(-time.Minute)) {
			t.Fatalf("a fresh id's time %v, %v", at, ok)
		}
		ancient := "dlv_" + hexMillis(now.Add(-48*time.Hour)) + "0123456789abcdef0123"
		expectProblem(t, "POST", "/api/admin/deliveries/"+ancient+"/replay", http.StatusGone, "delivery_purged")
		expectProblem(t, "GET", "/api/admin/deliveries/"+ancient, http.StatusGone, "delivery_purged")

		// Recent, and nothing deleted: never existed.
		expectProblem(t, "POST", "/api/admin/deliveries/"+old+"/replay", http.StatusNotFound, "delivery_not_found")
		expectProblem(t, "POST", "/api/admin/deliveries/"+ids.New("dlv_")+"/replay", http.StatusNotFound, "delivery_not_found")
		expectProblem(t, "POST", "/api/admin/deliveries/dlv_0123456789abcdef0123456789/replay", http.StatusNotFound, "delivery_not_found")
		expectProblem(t, "GET", "/api/admin/deliveries/nonsense", http.StatusNotFound, "delivery_not_found")

		// Deleted with its survey: the tombstone covers the id's time.
		gone := ids.New("evt_")
		goneID := delivery.DeliveryID(gone, "wh3")
		insert(t, db, []row{{id: goneID, event: gone, webhook: "wh3", survey: "s2", typ: "survey.session.submitted",
			status: delivery.StatusSucceeded, created: now.Add(-time.Minute)}})
		now = time.Now().UTC() // after the id was made
		err = db.Driver.InTx(t.Context(), func(tx store.Executor) error {
			_, err := tx.Deliveries().DeleteSurvey(t.Context(), "s2", now.Add(-2*time.Hour), now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		expectProblem(t, "POST", "/api/admin/deliveries/"+goneID+"/replay", http.StatusGone, "delivery_purged")
		// A delivery created after the deletion, never stored: not found.
		later := "dlv_" + hexMillis(now.Add(time.Second)) + "0123456789abcdef0123"
		now = now.Add(time.Minute)
		expectProblem(t, "POST", "/api/admin/deliveries/"+later+"/replay", http.StatusNotFound, "delivery_not_found")
	})
}

// hexMillis is the 12 hex digits of t in Unix milliseconds, as ids start.
func hexMillis(t time.Time) string {
	const digits = "0123456789abcdef"
	ms := t.UnixMilli()
	out := make([]byte, 12)
	for i := 11; i >= 0; i-- {
		out[i] = digits[ms&0xf]
		ms >>= 4
	}
	return string(out)
}
