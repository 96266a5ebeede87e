package delivery_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/dispatch24/dispatch24/internal/delivery"
)

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ event, webhook string }{
		{"evt_1", "wh_1"},
		{"evt_0190f3a1b2c37d4e8f90a1b2c3d4e5f6", "wh_7c1e"},
		{"", ""},
	} {
		// The data model's formula, computed independently: "dlv_" + hex(sha256(event NUL webhook))[:26].
		sum := sha256.Sum256([]byte(c.event + "\x00" + c.webhook))
		want := "dlv_" + hex.EncodeToString(sum[:])[:26]
		if got := delivery.DeliveryID(c.event, c.webhook); got != want {
			t.Errorf("DeliveryID(%q, %q) = %s, want %s", c.event, c.webhook, got, want)
		}
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if delivery.DeliveryID("ab", "c") == delivery.DeliveryID("a", "bc") {
		t.Error("ids collide across the separator")
	}
	if got := delivery.DeliveryID("evt_1", "wh_1"); len(got) != 30 || got[:4] != "dlv_" {
		t.Errorf("id %q is not dlv_ and 26 hex digits", got)
	}
}
