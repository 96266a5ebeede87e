package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// An event's webhooks version reaches the stream as a header, by the fast path and by the
// sweep alike; an unknown version (0) is no header at all.
func TestRelayCarriesWebhooksVersion(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		entries := b.entries(t, 6)
		want := map[string]string{}
		for i := range entries {
			entries[i].Message.WebhooksVersion = int64(i) // the first is 0: unknown
			want[entries[i].Message.ID] = ""
			if i > 0 {
				want[entries[i].Message.ID] = fmt.Sprint(i)
			}
		}
		// The first half is left for the sweep (no reservation), the rest goes by the fast path.
		if err := outbox.Insert(context.Background(), db.Driver, time.Time{}, entries[:3]); err != nil {
			t.Fatal(err)
		}
		r, _ := b.start(t, b.config(nil))
		commit(t, db, r, entries[3:])
		msgs := b.nats.WaitMessages(t, len(entries))
		checkStream(t, msgs, entries)
		for _, m := range msgs {
			id := m.Header.Get(jetstream.MsgIDHeader)
			if got := m.Header.Get(events.HeaderWebhooksVersion); got != want[id] {
				t.Errorf("event %s: version header %q, want %q", id, got, want[id])
			}
			if _, ok := m.Header[events.HeaderWebhooksVersion]; ok && want[id] == "" {
				t.Errorf("event %s of unknown version has the header", id)
			}
		}
		var stored *int64
		if err := db.QueryRow(context.Background(), "SELECT webhooks_version FROM events WHERE id = $1",
			entries[0].Message.ID).Scan(&stored); err != nil || stored != nil {
			t.Errorf("unknown version stored as %v (err %v), want NULL", stored, err)
		}
	})
}
