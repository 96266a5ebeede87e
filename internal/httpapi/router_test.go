package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// headerAuth maps the X-Test-User header to fixed principals: an interface we own.
type headerAuth map[string]*httpapi.Principal

func (h headerAuth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	v := r.Header.Get("X-Test-User")
	if v == "" {
		return nil, nil
	}
	p, ok := h[v]
	if !ok {
		return nil, httpapi.Unauthorized("invalid_token", "unknown test user")
	}
	return p, nil
}

var principals = headerAuth{
	"admin":      {UserID: "u-admin", Kind: httpapi.KindGlobal, Roles: []string{"admin"}},
	"staff":      {UserID: "u-staff", Kind: httpapi.KindGlobal, Roles: []string{"staff"}, Surveys: []string{"s1"}},
	"respondent": {UserID: "u-resp", Kind: httpapi.KindRespondent, Roles: []string{"respondent"}, SurveyID: "s1"},
	"nobody":     {UserID: "u-none", Kind: httpapi.KindGlobal},
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := httpapi.NewRouter(principals, logger)
	ok := func(w http.ResponseWriter, r *http.Request) error {
		p := httpapi.PrincipalFrom(r.Context())
		who := "anonymous"
		if p != nil {
			who = p.UserID
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"who": who})
		return nil
	}
	rt.Handle("GET /public", httpapi.Public, ok)
	rt.Handle("GET /global", httpapi.Global, ok)
	rt.Handle("GET /admin", httpapi.Admin, ok)
	rt.Handle("GET /surveys/{surveyId}/admin", httpapi.SurveyStaff, ok)
	rt.Handle("POST /surveys/{surveyId}/app", httpapi.SurveyRespondent, ok)
	rt.Handle("POST /decode", httpapi.Public, func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Name  string          `json:"name"`
			Count int             `json:"count"`
			Extra json.RawMessage `json:"extra,omitempty"`
		}
		if err := httpapi.DecodeJSON(w, r, 128, &body); err != nil {
			return err
		}
		httpapi.WriteJSON(w, http.StatusOK, body)
		return nil
	})
	rt.Handle("GET /boom", httpapi.Public, func(w http.ResponseWriter, r *http.Request) error {
		return io.ErrUnexpectedEOF // an internal error: must not leak
	})
	rt.Handle("GET /panic", httpapi.Public, func(w http.ResponseWriter, r *http.Request) error {
		panic("kaboom")
	})
	srv := httptest.NewServer(httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger}, rt))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, user, ct, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return send(t, srv.Client(), req)
}

func send(t *testing.T, c *http.Client, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cases := []struct {
		method, path, user string
		status             int
		code               string
	}{
		{"GET", "/public", "", 200, ""},
		{"GET", "/global", "", 401, "unauthenticated"},
		{"GET", "/global", "bogus", 401, "invalid_token"},
		{"GET", "/global", "admin", 200, ""},
		{"GET", "/global", "staff", 200, ""},
		{"GET", "/global", "respondent", 403, "forbidden"},
		{"GET", "/global", "nobody", 403, "forbidden"},
		{"GET", "/admin", "admin", 200, ""},
		{"GET", "/admin", "staff", 403, "forbidden"},
		{"GET", "/admin", "respondent", 403, "forbidden"},
		{"GET", "/surveys/s1/admin", "admin", 200, ""},
		{"GET", "/surveys/s2/admin", "admin", 200, ""},
		{"GET", "/surveys/s1/admin", "staff", 200, ""},
		{"GET", "/surveys/s2/admin", "staff", 404, "survey_not_found"},
		{"GET", "/surveys/s1/admin", "respondent", 403, "forbidden"},
		{"POST", "/surveys/s1/app", "respondent", 200, ""},
		{"POST", "/surveys/s2/app", "respondent", 404, "survey_not_found"},
		{"POST", "/surveys/s1/app", "admin", 403, "forbidden"},
		{"POST", "/surveys/s1/app", "", 401, "unauthenticated"},
	}
	for _, c := range cases {
		resp, body := do(t, srv, c.method, c.path, c.user, "", "")
		if resp.StatusCode != c.status {
			t.Errorf("%s %s as %q: status %d, want %d", c.method, c.path, c.user, resp.StatusCode, c.status)
			continue
		}
		if c.code != "" {
			if body["code"] != c.code {
				t.Errorf("%s %s as %q: code %v, want %s", c.method, c.path, c.user, body["code"], c.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s %s: content type %q", c.method, c.path, ct)
			}
		}
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)

	resp, body := do(t, srv, "GET", "/nowhere", "", "", "")
	if resp.StatusCode != 404 || body["code"] != "route_not_found" {
		t.Errorf("unknown route: %d %v", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "DELETE", "/public", "", "", "")
	if resp.StatusCode != 405 || body["code"] != "method_not_allowed" || resp.Header.Get("Allow") == "" {
		t.Errorf("wrong method: %d %v allow=%q", resp.StatusCode, body, resp.Header.Get("Allow"))
	}
	resp, body = do(t, srv, "GET", "/boom", "", "", "")
	if resp.StatusCode != 500 || body["code"] != "internal" || strings.Contains(body["detail"].(string), "EOF") {
		t.Errorf("internal error: %d %v", resp.StatusCode, body)
	}
	if body["requestId"] == "" || body["requestId"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("request id %v vs header %q", body["requestId"], resp.Header.Get("X-Request-Id"))
	}
	resp, body = do(t, srv, "GET", "/panic", "", "", "")
	if resp.StatusCode != 500 || body["code"] != "internal" {
		t.Errorf("panic: %d %v", resp.StatusCode, body)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cases := []struct {
		ct, body string
		status   int
		code     string
	}{
		{"application/json", `{"name":"a","count":2}`, 200, ""},
		{"application/json; charset=utf-8", `{"name":"a"}`, 200, ""},
		{"text/plain", `{"name":"a"}`, 415, "unsupported_media_type"},
		{"application/json", `{"name":`, 400, "malformed_json"},
		{"application/json", ``, 400, "malformed_json"},
		{"application/json", `{"name":"a"} {"x":1}`, 400, "malformed_json"},
		{"application/json", `{"count":"two"}`, 400, "validation_failed"},
		{"application/json", `null`, 400, "validation_failed"},
		{"application/json", " \r\n\tnull\n", 400, "validation_failed"},
		{"application/json", `[]`, 400, "validation_failed"},
		{"application/json", `"a"`, 400, "validation_failed"},
		{"application/json", `{"name":"` + strings.Repeat("x", 200) + `"}`, 413, "body_too_large"},
	}
	for _, c := range cases {
		resp, body := do(t, srv, "POST", "/decode", "", c.ct, c.body)
		if resp.StatusCode != c.status || (c.code != "" && body["code"] != c.code) {
			t.Errorf("%q %q: %d %v, want %d %s", c.ct, c.body, resp.StatusCode, body, c.status, c.code)
		}
	}
	_, body := do(t, srv, "POST", "/decode", "", "application/json", `{"count":"two"}`)
	errs, _ := body["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["field"] != "count" {
		t.Errorf("validation errors %v", body["errors"])
	}
	// A null body is not taken as {}: the problem names the body, as for any other non-object.
	_, body = do(t, srv, "POST", "/decode", "", "application/json", `null`)
	errs, _ = body["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["field"] != "(body)" || errs[0].(map[string]any)["message"] != "must be an object" {
		t.Errorf("null body errors %v", body["errors"])
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	req, _ := http.NewRequest("GET", srv.URL+"/public", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("request id %q", got)
	}
	req.Header.Set("X-Request-Id", "bad id with spaces")
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
		t.Errorf("invalid incoming id kept: %q", got)
	}
}

func FuzzUnmarshalJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":1}`))
	f.Add([]byte(`{"count":"x"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"name":"\u0000","count":1e309}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var dst struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		err := httpapi.UnmarshalJSON(b, &dst)
		if err == nil {
			// Accepted bodies are clean throughout, whatever dst kept.
			if !httpapi.ValidText(dst.Name) || httpapi.CheckJSONText(b) != nil {
				t.Fatalf("accepted %q", b)
			}
			return
		}
		p, ok := err.(*httpapi.Problem)
		if !ok || p.Status != 400 {
			t.Fatalf("non-400 error %v", err)
		}
	})
}
