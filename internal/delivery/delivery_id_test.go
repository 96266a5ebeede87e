package delivery_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/ids"
)

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ event, webhook string }{
		{"evt_1", "wh_1"},
		{"", ""},
	} {
		// Event ids that carry no time keep the legacy formula, computed independently:
		// "dlv_" + hex(sha256(event NUL webhook))[:26].
		sum := sha256.Sum256([]byte(c.event + "\x00" + c.webhook))
		want := "dlv_" + hex.EncodeToString(sum[:])[:26]
		if got := delivery.DeliveryID(c.event, c.webhook); got != want {
			t.Errorf("DeliveryID(%q, %q) = %s, want %s", c.event, c.webhook, got, want)
		}
		if got := delivery.LegacyDeliveryID(c.event, c.webhook); got != want {
			t.Errorf("LegacyDeliveryID(%q, %q) = %s, want %s", c.event, c.webhook, got, want)
		}
		if _, ok := delivery.CreatedAt(want); ok {
			t.Errorf("legacy id %s carries a time", want)
		}
	}
	// An event id with a UUIDv7: "dlv_" + its 12 hex digits of time + hex(sha256(…))[:20].
	ev := "evt_0190f3a1b2c37d4e8f90a1b2c3d4e5f6"
	sum := sha256.Sum256([]byte(ev + "\x00" + "wh_7c1e"))
	want := "dlv_0190f3a1b2c3" + hex.EncodeToString(sum[:])[:20]
	if got := delivery.DeliveryID(ev, "wh_7c1e"); got != want {
		t.Errorf("DeliveryID(%q) = %s, want %s", ev, got, want)
	}
	if at, ok := delivery.CreatedAt(want); !ok || at.UnixMilli() != 0x0190f3a1b2c3 {
		t.Errorf("CreatedAt(%s) = %v, %v", want, at, ok)
	}
	if delivery.DeliveryID(ev, "wh_1") == delivery.DeliveryID(ev, "wh_2") {
		t.Error("two endpoints' deliveries of one event collide")
	}
	// A replay's id (dlv_ + UUIDv7) carries its creation time.
	before := time.Now().Add(-time.Millisecond)
	if at, ok := delivery.CreatedAt(ids.New("dlv_")); !ok || at.Before(before) || at.After(time.Now()) {
		t.Errorf("a fresh replay id's time = %v, %v", at, ok)
	}
	for _, bad := range []string{"", "dlv_", "dlv_XYZ3a1b2c37d4e8f90a1b2c3d4e5f6ab", "evt_0190f3a1b2c37d4e8f90a1b2c3d4e5f6"} {
		if _, ok := delivery.CreatedAt(bad); ok {
			t.Errorf("CreatedAt(%q) found a time", bad)
		}
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if delivery.DeliveryID("ab", "c") == delivery.DeliveryID("a", "bc") {
		t.Error("ids collide across the separator")
	}
}
