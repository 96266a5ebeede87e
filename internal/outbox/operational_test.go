package outbox_test

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// TestExhaustedEventID: the id depends on the delivery alone, has the shape of every event id
// (so the dispatcher's delivery ids carry a time), and differs between deliveries.
func TestExhaustedEventID(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^evt_[0-9a-f]{32}$`)
	d1 := delivery.DeliveryID(events.NewID(), "wh_a")
	d2 := delivery.DeliveryID(events.NewID(), "wh_b")
	a := outbox.ExhaustedEventID(d1, time.Now())
	if b := outbox.ExhaustedEventID(d1, time.Now().Add(time.Hour)); a != b {
		t.Errorf("the same delivery at two times: %s, %s", a, b)
	}
	if a == outbox.ExhaustedEventID(d2, time.Now()) {
		t.Error("two deliveries share an id")
	}
	if !shape.MatchString(a) || a[4:16] != d1[4:16] {
		t.Errorf("id %s for delivery %s", a, d1)
	}
	if _, ok := delivery.CreatedAt(delivery.DeliveryID(a, "wh_c")); !ok {
		t.Error("deliveries of the event carry no time")
	}
	// A legacy delivery id, without time, takes the failure's.
	at := time.UnixMilli(0x0123456789ab)
	if got := outbox.ExhaustedEventID("dlv_legacy", at); !shape.MatchString(got) || got[4:16] != "0123456789ab" {
		t.Errorf("legacy id: %s", got)
	}
}

// TestInsertNewSkipsStoredEvents: writing the same delivery's exhaustion twice stores one
// event, with the envelope receivers get.
func TestInsertNewSkipsStoredEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		d := store.Delivery{ID: delivery.DeliveryID(events.NewID(), "wh_a"), EventID: "evt_x", WebhookID: "wh_a",
			SurveyID: "s1", Type: events.TypeSessionSubmitted, Status: store.DeliveryFailed, Attempts: 3, LastError: "timeout"}
		for i := range 2 {
			e, err := outbox.DeliveryExhausted(&d, now.Add(time.Duration(i)*time.Second), 7)
			if err != nil {
				t.Fatal(err)
			}
			var stored []outbox.Entry
			err = db.Driver.InTx(ctx, func(tx store.Executor) error {
				stored, err = outbox.InsertNew(ctx, tx, []outbox.Entry{e, e})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 - i; len(stored) != want {
				t.Errorf("write %d stored %d events, want %d", i+1, len(stored), want)
			}
		}
		evs, err := outbox.NewArchive(db).Events(ctx, []string{outbox.ExhaustedEventID(d.ID, now)})
		if err != nil || len(evs) != 1 {
			t.Fatalf("stored: %v (%v)", evs, err)
		}
		ev := evs[0]
		if ev.Type != events.TypeDeliveryExhausted || ev.SurveyID != "s1" || ev.WebhooksVersion != 7 ||
			ev.Subject != events.Subject("s1", events.TypeDeliveryExhausted) {
			t.Errorf("row %+v", ev)
		}
		var env struct {
			events.Event
			Data events.DeliveryExhaustedData `json:"data"`
		}
		if err := json.Unmarshal(ev.Payload, &env); err != nil {
			t.Fatal(err)
		}
		want := events.DeliveryExhaustedData{WebhookID: "wh_a", DeliveryID: d.ID, EventID: "evt_x", Attempts: 3, LastError: "timeout"}
		if env.Data != want || env.ID != ev.ID || env.SurveyID != "s1" || !env.Timestamp.Equal(now) {
			t.Errorf("envelope %s", ev.Payload)
		}
		if got := events.AboutWebhook(ev.Type, ev.Payload); got != "wh_a" {
			t.Errorf("AboutWebhook = %q", got)
		}
	})
}
