package openapitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func exchangeOf(method, target, reqBody string, status int, ct, respBody string) *exchange {
	r := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	if reqBody != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return &exchange{req: r, reqBody: []byte(reqBody), reqComplete: true, status: status, header: h,
		respBody: []byte(respBody), respComplete: true}
}

func withToken(ex *exchange) *exchange {
	ex.req.Header.Set("X-Auth-Token", "a-token")
	return ex
}

const problem401 = `{"type":"https://dispatch24.dev/problems/invalid_credentials","title":"Unauthorized","status":401,"code":"invalid_credentials"}`

// TestCheckFindsMismatches feeds the checker exchanges that agree and disagree with the
// document, so a validator that checks nothing would fail here.
func TestCheckFindsMismatches(t *testing.T) {
	t.Parallel()
	c, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	signin := `{"email":"a@example.org","password":"pw"}`
	for _, tc := range []struct {
		name string
		ex   *exchange
		want string // "" for no failure, else a substring of one
	}{
		{"good sign-in", exchangeOf("POST", "/api/signin", signin, 200, "application/json", `{"refreshToken":"x"}`), ""},
		{"documented problem", exchangeOf("POST", "/api/signin", signin, 401, "application/problem+json", problem401), ""},
		{"response missing a required field", exchangeOf("POST", "/api/signin", signin, 200, "application/json", `{"token":"x"}`), "refreshToken"},
		{"undocumented status", exchangeOf("POST", "/api/signin", signin, 409, "application/problem+json",
			strings.ReplaceAll(problem401, "401", "409")), "409"},
		{"undocumented problem code", exchangeOf("POST", "/api/signin", signin, 401, "application/problem+json",
			strings.ReplaceAll(problem401, `"code":"invalid_credentials"`, `"code":"nope"`)), "POST /api/signin"},
		{"accepted request breaking the schema", exchangeOf("POST", "/api/signin", `{"email":1}`, 200, "application/json", `{"refreshToken":"x"}`), "accepted request"},
		{"refused request may break the schema", exchangeOf("POST", "/api/signin", `{"email":1}`, 400, "application/problem+json",
			`{"type":"t","title":"Bad Request","status":400,"code":"validation_failed","errors":[{"field":"email","message":"must be a string"}]}`), ""},
		{"literal path wins over a parameter", withToken(exchangeOf("POST", "/api/admin/deliveries/replay", `{"since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"}`, 202,
			"application/json", `{"replayId":"rpl_1","matched":0,"dryRun":false}`)), ""},
		{"accepted request without credentials", exchangeOf("GET", "/api/admin/users", "", 200, "application/json", `{"items":[]}`), "X-Auth-Token"},
		{"undocumented route served", exchangeOf("GET", "/api/secret", "", 200, "application/json", `{}`), "does not list"},
		{"router's unknown route", exchangeOf("GET", "/api/secret", "", 404, "application/problem+json",
			`{"type":"t","title":"Not Found","status":404,"code":"route_not_found"}`), ""},
		{"path tricks are not pinned to an operation", exchangeOf("GET", "/api/admin/users/..%2F..%2Fetc", "", 200, "application/json", `{}`), ""},
		{"outside /api", exchangeOf("GET", "/healthz", "", 200, "application/json", `{"status":"ok"}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(c.check(tc.ex), "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("unexpected failure: %s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("want a failure mentioning %q, got %q", tc.want, got)
			}
		})
	}
}

// TestHandlerSeesTheWire runs a handler through the middleware: the response is written
// through unchanged, and the exchange it checks is the one on the wire, including the part of
// an accepted body the handler did not read.
func TestHandlerSeesTheWire(t *testing.T) {
	t.Parallel()
	c, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, resp string
		failures   int
	}{
		{"valid", `{"refreshToken":"x"}`, 0},
		{"invalid", `{"refreshToken":7}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &session{c: c}
			h := s.handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = r.Body.Read(make([]byte, 5))
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.resp[:5]))
				_, _ = w.Write([]byte(tc.resp[5:]))
			}))
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/api/signin", strings.NewReader(`{"email":"a@b.c","password":"p"}`))
			r.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, r)
			if rec.Body.String() != tc.resp || rec.Code != 200 {
				t.Fatalf("not written through: %d %q", rec.Code, rec.Body.String())
			}
			if len(s.failures) != tc.failures {
				t.Fatalf("failures %v, want %d", s.failures, tc.failures)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := string(redact([]byte(`{"secret":"whsec_abc","refreshToken":"ey.x\\"y","name":"n","jwtSecret":"s","password":"p"}`)))
	for _, leak := range []string{"whsec_abc", "ey.x", `"s"`, `"p"`} {
		if strings.Contains(got, leak) {
			t.Errorf("%s left in %s", leak, got)
		}
	}
	if !strings.Contains(got, `"name":"n"`) {
		t.Errorf("redacted too much: %s", got)
	}
}
