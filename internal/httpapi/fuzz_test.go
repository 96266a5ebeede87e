package httpapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// cleanJSON is the oracle of CheckJSONText, built from encoding/json alone: valid UTF-8, and
// decoded into any (numbers as float64) with no string, key or value, holding NUL.
func cleanJSON(b []byte) bool {
	var v any
	if !utf8.Valid(b) || json.Unmarshal(b, &v) != nil {
		return false
	}
	var clean func(any) bool
	clean = func(v any) bool {
		switch v := v.(type) {
		case string:
			return !strings.ContainsRune(v, 0)
		case []any:
			for _, e := range v {
				if !clean(e) {
					return false
				}
			}
		case map[string]any:
			for k, e := range v {
				if strings.ContainsRune(k, 0) || !clean(e) {
					return false
				}
			}
		}
		return true
	}
	return clean(v)
}

// FuzzCheckJSONText: CheckJSONText never panics, answers only 400 problems, malformed_json
// exactly for what encoding/json refuses as syntax, and accepts exactly the documents the
// oracle finds clean; every problem names at least one field.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{
		`{"a":"b","c":[1,2.5,-3e10,true,null,{}]}`, `"\u0000"`, `{"a":{"b\u0000":1}}`, "{\"a\":\"\xff\"}",
		`{"a":1e309,"b":1e-400}`, `[` + strings.Repeat("9", 400) + `]`, `{"a":1} {}`, `NaN`, `{"\ud800":"\udc00x"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := httpapi.CheckJSONText(b)
		if err == nil {
			if !cleanJSON(b) {
				t.Fatalf("accepted %q, which is not clean", b)
			}
			return
		}
		var p *httpapi.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
			t.Fatalf("error %v is not a 400 problem", err)
		}
		switch p.Code {
		case "malformed_json":
			if json.Valid(b) || (!utf8.Valid(b) && json.Valid([]byte(strings.ToValidUTF8(string(b), "x")))) {
				t.Fatalf("%q refused as malformed", b)
			}
		case "validation_failed":
			if cleanJSON(b) || len(p.Errors) == 0 {
				t.Fatalf("%q refused as %+v", b, p.Errors)
			}
			for _, fe := range p.Errors {
				if fe.Field == "" || !httpapi.ValidText(fe.Field) {
					t.Fatalf("field %q", fe.Field)
				}
			}
		default:
			t.Fatalf("code %s", p.Code)
		}
	})
}

// FuzzRouterText: whatever path value and query a request carries, the handler sees only
// valid UTF-8 without NUL in them; everything else is answered before it with a 400 that
// names the field, or by the mux (404, or a redirect for a path it cleans).
func FuzzRouterText(f *testing.F) {
	for _, s := range [][2]string{{"abc", "x=1"}, {"%00", ""}, {"a%ffb", "q=%00"}, {"%c3%a9", "%ff=1&y=%c3%28"}, {"..%2f", "a=%zz"}} {
		f.Add(s[0], s[1])
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := httpapi.NewRouter(principals, logger)
	var seen *testing.T
	rt.Handle("GET /items/{id}/{rest...}", httpapi.Public, func(w http.ResponseWriter, r *http.Request) error {
		for _, v := range []string{r.PathValue("id"), r.PathValue("rest")} {
			if !httpapi.ValidText(v) {
				seen.Fatalf("handler saw path value %q", v)
			}
		}
		for k, vs := range r.URL.Query() {
			for _, v := range append(vs, k) {
				if !httpapi.ValidText(v) {
					seen.Fatalf("handler saw query text %q", v)
				}
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h := httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger}, rt)
	f.Fuzz(func(t *testing.T, seg, query string) {
		seen = t
		// The segment goes in raw, as a client may send it (it may hold escapes).
		target := "/items/" + strings.Map(func(r rune) rune {
			if r <= ' ' || r == '?' || r == '#' || r == 0x7f {
				return -1
			}
			return r
		}, seg) + "/tail"
		req, err := http.NewRequest("GET", "http://h"+target, nil)
		if err != nil {
			return // not a request a server would parse either
		}
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusNoContent, http.StatusNotFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		case http.StatusBadRequest:
			var p httpapi.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != "validation_failed" || len(p.Errors) == 0 {
				t.Fatalf("400 without named fields: %s", w.Body.String())
			}
		default:
			t.Fatalf("%s?%s: %d %s", target, query, w.Code, w.Body.String())
		}
	})
}
