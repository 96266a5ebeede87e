package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// TestPatchNullBodyRefused: a JSON null where a PATCH expects an object is a 400 naming the
// body on every PATCH route, not an empty change answered 200, and the resource is as it was.
func TestPatchNullBodyRefused(t *testing.T) {
	t.Parallel()
	a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "admin password",
		"WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
	admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
	must := func(want int, method, path, body string) map[string]any {
		t.Helper()
		w := a.do(t, method, path, body, admin)
		if w.Code != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, w.Code, want, w.Body.String())
		}
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return out
	}
	must(201, "POST", "/api/admin/surveys", `{"id":"nb","name":"NB"}`)
	must(201, "POST", "/api/admin/surveys/nb/respondents", `{"username":"r1","name":"R"}`)
	u := must(201, "POST", "/api/admin/users", `{"email":"nb@example.org","password":"staff password","name":"U","roles":["staff"],"surveys":["nb"]}`)
	wh := must(201, "POST", "/api/admin/surveys/nb/webhooks", `{"url":"http://127.0.0.1:9/hook","description":"d"}`)
	for _, path := range []string{
		"/api/admin/surveys/nb",
		"/api/admin/surveys/nb/respondents/r1",
		"/api/admin/users/" + u["id"].(string),
		"/api/admin/surveys/nb/webhooks/" + wh["id"].(string),
	} {
		before := a.do(t, "GET", path, "", admin).Body.String()
		for _, body := range []string{`null`, " null\n"} {
			w := a.do(t, "PATCH", path, body, admin)
			var p httpapi.Problem
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != http.StatusBadRequest || p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Field != "(body)" {
				t.Errorf("PATCH %s %q: %d %s, want 400 validation_failed naming (body)", path, body, w.Code, w.Body.String())
			}
		}
		if after := a.do(t, "GET", path, "", admin).Body.String(); after != before {
			t.Errorf("%s changed: %s -> %s", path, before, after)
		}
		// An empty object is still an empty change.
		must(200, "PATCH", path, `{}`)
	}
}
