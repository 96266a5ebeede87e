package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// TestInventedMethodsAndOddPathsMintNoSeries: a method that is not a standard one is answered
// 501 before routing, and neither it nor a path that matches no route becomes a label: after
// a run of such requests every label of the HTTP series is a route pattern, "unmatched", a
// standard method or "other", and a status code.
func TestInventedMethodsAndOddPathsMintNoSeries(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	metrics := telemetry.NewMetrics()
	rt := httpapi.NewRouter(principals, logger)
	rt.Handle("GET /public", httpapi.Public, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h := httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger, Metrics: metrics}, rt)

	invented := []string{"FOO", "BREW", "get", "PROPFIND", "X" + strings.Repeat("Y", 4096), "M-SEARCH"}
	paths := []string{"/public", "/nowhere", "/public/../%00", "/%ff%fe", "/secret-token-0123456789", "/public?x=%00"}
	for _, m := range invented {
		for _, p := range paths {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(m, p, nil))
			if w.Code != http.StatusNotImplemented {
				t.Errorf("%.10s %s: %d, want 501", m, p, w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%.10s %s: content type %q", m, p, ct)
			}
		}
	}
	for _, p := range paths {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code >= 500 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}

	// Invented methods are the client's doing: no ERROR line for each.
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("invented methods logged as errors:\n%.500s", logs.String())
	}

	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{
		"route":  {"GET /public", "unmatched"},
		"method": {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "other"},
		"status": {"204", "400", "404", "501"},
	}
	series := 0
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "dispatch24_http_") {
			continue
		}
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				if !slices.Contains(allowed[l.GetName()], l.GetValue()) {
					t.Errorf("%s has label %s=%.40q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	// GET /public 204, GET unmatched 404, GET /public?x=%00 400, other unmatched 501; one
	// duration series per route.
	if series != 4+2 {
		t.Errorf("%d HTTP series, want 6", series)
	}
}

// TestTextInputsRefused: NUL and invalid UTF-8 in a path value, a query value, an input header
// or any JSON string, and numbers no float64 holds, are a 400 naming the field, before the
// handler runs (and before credentials are looked at).
func TestTextInputsRefused(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cases := []struct {
		method, path, user, body string
		header                   [2]string
		field                    string
	}{
		{"GET", "/surveys/%00/admin", "", "", [2]string{}, "surveyId"},
		{"GET", "/surveys/a%00b/admin", "admin", "", [2]string{}, "surveyId"},
		{"GET", "/surveys/%ff/admin", "admin", "", [2]string{}, "surveyId"},
		{"GET", "/public?surveyId=%00", "", "", [2]string{}, "surveyId"},
		{"GET", "/public?a=ok&a=%c3%28", "", "", [2]string{}, "a"},
		{"GET", "/public?%00=1", "", "", [2]string{}, "(query)"},
		{"GET", "/public", "", "", [2]string{"Idempotency-Key", "\xff"}, "Idempotency-Key"},
		{"GET", "/admin", "", "", [2]string{"X-Auth-Token", "tok\xc3"}, "X-Auth-Token"},
		{"POST", "/decode", "", `{"name":"a\u0000"}`, [2]string{}, "name"},
		{"POST", "/decode", "", "{\"name\":\"\xff\"}", [2]string{}, "name"},
		{"POST", "/decode", "", `{"extra":{"list":[1,"\u0000"]}}`, [2]string{}, "extra.list[1]"},
		{"POST", "/decode", "", `{"extra":{"n":-1e309}}`, [2]string{}, "extra.n"},
		{"POST", "/decode", "", `{"count":1E400}`, [2]string{}, "count"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.user != "" {
			req.Header.Set("X-Test-User", c.user)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.header[0] != "" {
			req.Header[c.header[0]] = []string{c.header[1]}
		}
		resp, body := send(t, srv.Client(), req)
		if resp.StatusCode != 400 || body["code"] != "validation_failed" {
			t.Errorf("%s %s %q: %d %v, want 400 validation_failed", c.method, c.path, c.body, resp.StatusCode, body)
			continue
		}
		errs, _ := body["errors"].([]any)
		if len(errs) == 0 || errs[0].(map[string]any)["field"] != c.field {
			t.Errorf("%s %s %q: errors %v, want field %s", c.method, c.path, c.body, body["errors"], c.field)
		}
	}
	// Clean values still pass, a big but finite number too.
	for _, p := range []string{"/surveys/s%C3%A9/admin?x=%C3%A9", "/public?surveyId=abc"} {
		if resp, body := do(t, srv, "GET", p, "admin", "", ""); resp.StatusCode >= 400 && resp.StatusCode != 404 {
			t.Errorf("GET %s: %d %v", p, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, srv, "POST", "/decode", "", "application/json", `{"extra":[1.7976931348623157e308, 1e-400, "\\u0000"]}`); resp.StatusCode != 200 {
		t.Errorf("clean body: %d %v", resp.StatusCode, body)
	}
}

// TestDeclaredLengthPastLimit: a Content-Length past the limit is a 413 before any byte is
// read.
func TestDeclaredLengthPastLimit(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/x", readerFunc(func([]byte) (int, error) {
		t.Error("the body was read")
		return 0, io.EOF
	}))
	r.ContentLength = 1 << 30
	_, err := httpapi.ReadBody(httptest.NewRecorder(), r, 1024)
	if p, ok := err.(*httpapi.Problem); !ok || p.Status != http.StatusRequestEntityTooLarge || p.Code != "body_too_large" {
		t.Fatalf("got %v, want a 413 body_too_large", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestCheckJSONText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		doc    string
		code   string
		fields []string
	}{
		{`{"a":"b","c":[1,2.5,-3e10,true,null,{}]}`, "", nil},
		{`"\u0000"`, "validation_failed", []string{"(body)"}},
		{`[["x"],["\u0000"]]`, "validation_failed", []string{"[1][0]"}},
		{`{"a":{"b\u0000":1}}`, "validation_failed", []string{"a"}},
		{"{\"a\":[\"\xff\",\"ok\",\"\xed\xa0\x80\"]}", "validation_failed", []string{"a[0]", "a[2]"}},
		{`{"a":1e309,"b":1e-400,"c":-2E+308}`, "validation_failed", []string{"a", "c"}},
		{`{"a":1} {}`, "malformed_json", nil},
		{`{"a":`, "malformed_json", nil},
		{`NaN`, "malformed_json", nil},
		{`{"a\u0000b":{"\u0000":"\u0000"}}`, "validation_failed", []string{"(body)", "a\uFFFDb", "a\uFFFDb.\uFFFD"}},
	}
	for _, c := range cases {
		err := httpapi.CheckJSONText([]byte(c.doc))
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: %v", c.doc, err)
			}
			continue
		}
		p, ok := err.(*httpapi.Problem)
		if !ok || p.Status != 400 || p.Code != c.code {
			t.Errorf("%q: %v, want 400 %s", c.doc, err, c.code)
			continue
		}
		var got []string
		for _, f := range p.Errors {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, c.fields) {
			t.Errorf("%q: fields %v, want %v", c.doc, got, c.fields)
		}
	}
}
