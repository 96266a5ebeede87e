package endpoint_test

import (
	"net/http"
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestOrdering: an endpoint's ordering defaults to "none", POST and PATCH set it, GET and the
// list show it, and a bad value is refused naming the field without changing anything.
func TestOrdering(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback()})
		base := "/api/admin/surveys/s1/webhooks"
		code, out, raw := b.do(t, asStaff, "POST", base, map[string]any{"url": "http://127.0.0.1:9/a"})
		if code != http.StatusCreated || out["ordering"] != "none" {
			t.Fatalf("create without ordering: %d %s", code, raw)
		}
		code, out, raw = b.do(t, asStaff, "POST", base, map[string]any{"url": "http://127.0.0.1:9/b", "ordering": "fifo"})
		if code != http.StatusCreated || out["ordering"] != "fifo" {
			t.Fatalf("create fifo: %d %s", code, raw)
		}
		id := out["id"].(string)
		code, out, _ = b.do(t, asStaff, "POST", base, map[string]any{"url": "http://127.0.0.1:9/c", "ordering": "lifo"})
		expectValidation(t, code, out, "ordering")

		code, out, raw = b.do(t, asStaff, "PATCH", base+"/"+id, map[string]any{"ordering": "sorted", "description": "x"})
		expectValidation(t, code, out, "ordering")
		code, out, raw = b.do(t, asStaff, "GET", base+"/"+id, nil)
		if code != http.StatusOK || out["ordering"] != "fifo" || out["description"] != "" {
			t.Fatalf("after a refused PATCH: %d %s", code, raw)
		}
		code, out, raw = b.do(t, asStaff, "PATCH", base+"/"+id, map[string]any{"ordering": "none"})
		if code != http.StatusOK || out["ordering"] != "none" {
			t.Fatalf("PATCH ordering none: %d %s", code, raw)
		}
		code, out, raw = b.do(t, asStaff, "GET", base, nil)
		items, _ := out["items"].([]any)
		if code != http.StatusOK || len(items) != 2 {
			t.Fatalf("list: %d %s", code, raw)
		}
		for _, it := range items {
			if it.(map[string]any)["ordering"] != "none" {
				t.Errorf("listed %v", it)
			}
		}
	})
}
