package delivery_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/retention"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// raceRetention is the RETENTION of the purge races: the seeded deliveries and events are
// twice as old.
const raceRetention = 24 * time.Hour

// seedExpired stores a failed delivery of webhook wh1 (survey s1), last active 48 hours ago,
// of an event published then, and returns it. Its id carries its creation time, as every id
// does since issue 13, so that once purged it is answered as purged.
func seedExpired(t *testing.T, db *store.DB, n int) *delivery.Delivery {
	t.Helper()
	created := time.Now().Add(-2 * raceRetention).UTC().Truncate(time.Millisecond)
	ev := fmt.Sprintf("evt_race_%03d", n)
	if err := db.Driver.Events().InsertPublished(t.Context(), store.Event{ID: ev, Type: "survey.session.submitted",
		SurveyID: "s1", Subject: "x", Payload: []byte(`{"n":1}`), CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("dlv_%s%020x", hexMillis(created), n)
	insert(t, db, []row{{id: id, event: ev, webhook: "wh1", survey: "s1", typ: "survey.session.submitted",
		status: delivery.StatusFailed, created: created}})
	d, err := delivery.NewStore(db).Get(t.Context(), delivery.Scope{All: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newRacePurger(t *testing.T, db *store.DB) *retention.Purger {
	t.Helper()
	p, err := retention.New(retention.Config{DB: db, Retention: raceRetention, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventStored reports whether event id is stored.
func eventStored(t *testing.T, db *store.DB, id string) bool {
	t.Helper()
	evs, err := db.Driver.Events().ByID(t.Context(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs) == 1
}

// The interleaving that was left open: a replay reads a delivery, the purge then deletes the
// delivery and its event, and the replay goes on. It must enqueue nothing (a pending delivery
// of an event that is gone would fail later with event_missing) and say the delivery is
// gone.
func TestReplayAfterThePurgeTookTheDelivery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		setup(t, db, 100)
		d := seedExpired(t, db, 1)
		res, err := newRacePurger(t, db).PurgeOnce(t.Context())
		if err != nil || res.Deliveries != 1 || res.Events != 1 {
			t.Fatalf("purge: %+v, %v; want the delivery and its event", res, err)
		}
		nd, err := delivery.NewStore(db).ReplayOne(t.Context(), d, time.Now())
		if !errors.Is(err, delivery.ErrDeliveryGone) {
			t.Fatalf("ReplayOne of a purged delivery = %+v, %v; want ErrDeliveryGone", nd, err)
		}
		var n int
		if err := db.QueryRow(t.Context(), `SELECT count(*) FROM deliveries WHERE replay_of = $1`, d.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d replays enqueued, %v", n, err)
		}
	})
}

// A replay of a delivery at the instant the purge deletes it and its event, over HTTP, many
// times: every answer is 202 (the replay held the delivery first: its new pending delivery
// and the event it needs are both stored) or 410 delivery_purged (the purge was first:
// nothing is enqueued), never a 500 or a pending delivery of an event that is gone.
func TestReplayRacesThePurge(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, 100)
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		svc, err := delivery.NewService(delivery.Config{DB: db, Logger: logger, Retention: raceRetention})
		if err != nil {
			t.Fatal(err)
		}
		b.rt = httpapi.NewRouter(testAuth{}, logger)
		svc.Register(b.rt)
		purger := newRacePurger(t, db)

		const rounds = 40
		outcomes := map[int]int{}
		for i := range rounds {
			d := seedExpired(t, db, 100+i)
			var (
				wg     sync.WaitGroup
				status int
				body   map[string]any
				raw    []byte
				res    retention.Result
				perr   error
			)
			start := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				// Later and later across the rounds, so that the replay meets the purge
				// before, while and after it deletes the delivery and its event.
				time.Sleep(time.Duration(i) * 400 * time.Microsecond)
				status, body, raw = b.do(t, asAdmin, "POST", "/api/admin/deliveries/"+d.ID+"/replay", nil)
			}()
			go func() {
				defer wg.Done()
				<-start
				res, perr = purger.PurgeOnce(t.Context())
			}()
			close(start)
			wg.Wait()
			if perr != nil {
				t.Fatalf("round %d: purge: %v", i, perr)
			}
			outcomes[status]++
			var replays []string
			rows, err := db.Query(t.Context(), `SELECT id FROM deliveries WHERE replay_of = $1 AND status = 'pending'`, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				replays = append(replays, id)
			}
			rows.Close()
			switch {
			case status == http.StatusAccepted:
				if len(replays) != 1 || body["deliveryId"] != replays[0] {
					t.Fatalf("round %d: 202 %s, but the pending replays are %v", i, raw, replays)
				}
				if !eventStored(t, db, d.EventID) {
					t.Fatalf("round %d: the replay %s is pending but the purge (%s) deleted its event", i, replays[0], res)
				}
			case status == http.StatusGone && body["code"] == "delivery_purged":
				if len(replays) != 0 {
					t.Fatalf("round %d: 410 but replays %v were enqueued", i, replays)
				}
			default:
				t.Fatalf("round %d: replay answered %d %s; want 202 or 410 delivery_purged", i, status, raw)
			}
		}
		t.Logf("%d rounds: answers %v", rounds, outcomes)
	})
}
