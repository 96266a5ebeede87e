package endpoint_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestRateLimitField covers the rateLimit of CONTRACT section 8 through the API: POST and
// PATCH take it, GET and the list show it, PATCH null clears it, and a bad value is a 400
// naming the field that changes nothing.
func TestRateLimitField(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback()})
		const base = "/api/admin/surveys/s1/webhooks"

		// Without the field, and with null, there is no limit.
		for _, body := range []map[string]any{{"url": "http://127.0.0.1:9/a"}, {"url": "http://127.0.0.1:9/b", "rateLimit": nil}} {
			code, out, raw := b.do(t, asStaff, "POST", base, body)
			if code != http.StatusCreated || out["rateLimit"] != nil {
				t.Fatalf("create %v: %d %s", body, code, raw)
			}
			if _, ok := out["rateLimit"]; !ok {
				t.Errorf("create %v: the answer has no rateLimit field: %s", body, raw)
			}
		}
		code, out, raw := b.do(t, asStaff, "POST", base, map[string]any{"url": "http://127.0.0.1:9/c", "rateLimit": 20})
		if code != http.StatusCreated || out["rateLimit"] != float64(20) {
			t.Fatalf("create with a limit: %d %s", code, raw)
		}
		id, _ := out["id"].(string)
		path := base + "/" + id
		show := func() any {
			t.Helper()
			code, out, raw := b.do(t, asStaff, "GET", path, nil)
			if code != http.StatusOK {
				t.Fatalf("get: %d %s", code, raw)
			}
			return out["rateLimit"]
		}
		if got := show(); got != float64(20) {
			t.Errorf("GET shows rateLimit %v, want 20", got)
		}
		_, list, _ := b.do(t, asStaff, "GET", base, nil)
		items, _ := list["items"].([]any)
		for _, it := range items {
			if m, _ := it.(map[string]any); m["id"] == id && m["rateLimit"] != float64(20) {
				t.Errorf("the list shows %v", m)
			}
		}

		for _, bad := range []string{`0`, `-3`, `2.5`, `"20"`, `true`, `[20]`, `{}`, `100001`, `1e9`} {
			for _, method := range []string{"POST", "PATCH"} {
				target, body := base, map[string]any{"url": "http://127.0.0.1:9/d", "rateLimit": json.RawMessage(bad)}
				if method == "PATCH" {
					target, body = path, map[string]any{"rateLimit": json.RawMessage(bad), "description": "not applied"}
				}
				code, out, _ := b.do(t, asStaff, method, target, body)
				expectValidation(t, code, out, "rateLimit")
			}
		}
		if got := show(); got != float64(20) {
			t.Errorf("after refused PATCHes rateLimit is %v, want 20", got)
		}
		if _, out, _ := b.do(t, asStaff, "GET", path, nil); out["description"] == "not applied" {
			t.Error("a refused PATCH changed the description")
		}
		if _, list, _ := b.do(t, asStaff, "GET", base, nil); len(list["items"].([]any)) != 3 {
			t.Errorf("refused creations created webhooks: %v", list["items"])
		}

		// A whole number written as 7.0 is an integer, as JSON Schema has it.
		for _, c := range []struct {
			body map[string]any
			want any
		}{
			{map[string]any{"rateLimit": json.RawMessage(`7.0`)}, float64(7)},
			{map[string]any{"description": "other field"}, float64(7)}, // left out: unchanged
			{map[string]any{"rateLimit": 100000}, float64(100000)},
			{map[string]any{"rateLimit": nil}, nil}, // null clears it
		} {
			code, out, raw := b.do(t, asStaff, "PATCH", path, c.body)
			if code != http.StatusOK || out["rateLimit"] != c.want {
				t.Fatalf("PATCH %v: %d %s, want rateLimit %v", c.body, code, raw, c.want)
			}
			if got := show(); got != c.want {
				t.Errorf("after PATCH %v GET shows %v, want %v", c.body, got, c.want)
			}
		}
	})
}
