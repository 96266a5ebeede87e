// Package openapitest checks HTTP exchanges against the API's OpenAPI document with
// github.com/pb33f/libopenapi-validator, for tests: a middleware (Handler) for in-process
// handlers and a client (Client) for a served API. Each failure is reported on the test that
// made the exchange, when it ends.
//
// What is checked, for each exchange on a documented /api operation:
//   - every response: its status is documented for the operation, its Content-Type is one the
//     document lists for that status, and its body validates against that schema (so a problem's
//     code must be one the response lists);
//   - the request, when the API accepted it (2xx): its parameters, security and body validate.
//     Requests the API refused are tests of bad input and may break the document on purpose.
//
// A request to /api that no documented operation matches must be answered as the router
// answers unknown routes (404 route_not_found, 405, 501); anything else is reported, as an
// undocumented route.
package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/openapi/model"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// captureLimit bounds the bytes of one body kept for validation; longer bodies are not
// validated (the API's largest legitimate bodies are 1 MiB recalls and CSV imports).
const captureLimit = 4 << 20

// operation is one documented operation and the pattern its path template matches.
type operation struct {
	name   string // "GET /api/admin/deliveries/{id}"
	method string
	re     *regexp.Regexp
	params int
}

// checker validates exchanges. One is shared by every test of a process: the validator and its
// compiled schemas are built once.
type checker struct {
	// v is safe for concurrent use: its caches are sync.Maps.
	v   validator.Validator
	mu  sync.Mutex // guards seen
	ops []operation
	// seen counts the validated exchanges of each operation.
	seen map[string]Count
}

var shared = sync.OnceValues(newChecker)

func newChecker() (*checker, error) {
	doc, m, err := model.Load()
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapitest: building the validator: %v", errs)
	}
	c := &checker{v: v, seen: map[string]Count{}}
	for path, item := range m.Paths.PathItems.FromOldest() {
		segs := strings.Split(path, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, "{") {
				segs[i] = "[^/]+"
			} else {
				segs[i] = regexp.QuoteMeta(seg)
			}
		}
		re := regexp.MustCompile("^" + strings.Join(segs, "/") + "$")
		for method := range item.GetOperations().FromOldest() {
			c.ops = append(c.ops, operation{
				name:   strings.ToUpper(method) + " " + path,
				method: strings.ToUpper(method),
				re:     re,
				params: strings.Count(path, "{"),
			})
		}
	}
	return c, nil
}

// find returns the documented operation a request is for: among the templates that match,
// the one with the fewest parameters (literal segments win, as in the router).
func (c *checker) find(method, path string) (operation, bool) {
	var best operation
	found := false
	for _, op := range c.ops {
		if op.method == method && op.re.MatchString(path) && (!found || op.params < best.params) {
			best, found = op, true
		}
	}
	return best, found
}

// exchange is one request and its response as seen on the wire.
type exchange struct {
	req          *http.Request
	reqBody      []byte
	reqComplete  bool // reqBody is the whole body
	status       int
	header       http.Header
	respBody     []byte
	respComplete bool
}

// check validates ex and returns what is wrong with it.
func (c *checker) check(ex *exchange) []string {
	r := ex.req
	if r.Method == http.MethodHead || !httpapi.StandardMethod(r.Method) {
		return nil // HEAD has no body to check; invented methods are the router's 501
	}
	if oddPath(r.URL.EscapedPath()) {
		// Encoded slashes and dots, empty and dot segments: the hostile tests' path tricks,
		// which the validator rightly refuses to pin to one operation.
		return nil
	}
	op, ok := c.find(r.Method, r.URL.Path)
	if !ok {
		if !strings.HasPrefix(r.URL.Path, "/api/") || routerRefusal(ex) {
			return nil
		}
		return []string{fmt.Sprintf("%s %s → %d: the API serves an operation the document does not list",
			r.Method, r.URL.Path, ex.status)}
	}
	if !ex.respComplete {
		return nil
	}
	var out []string
	resp := &http.Response{
		StatusCode: ex.status, Header: ex.header, Request: r,
		Body: io.NopCloser(bytes.NewReader(ex.respBody)), ContentLength: int64(len(ex.respBody)),
	}
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
	if ok, errs := c.v.ValidateHttpResponse(req, resp); !ok {
		out = append(out, describe(op.name, fmt.Sprintf("response %d %.300s", ex.status, redact(ex.respBody)), errs)...)
	}
	if ex.status >= 200 && ex.status < 300 && ex.reqComplete {
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
		req.ContentLength = int64(len(ex.reqBody))
		if ok, errs := c.v.ValidateHttpRequestSync(req); !ok {
			out = append(out, describe(op.name, fmt.Sprintf("accepted request %.300s", redact(ex.reqBody)), errs)...)
		}
	}
	c.mu.Lock()
	n := c.seen[op.name]
	n.Exchanges++
	if ex.status >= 200 && ex.status < 300 {
		n.Accepted++
	}
	c.seen[op.name] = n
	c.mu.Unlock()
	return out
}

// secretField matches the JSON string fields that carry secrets, tokens or passwords.
var secretField = regexp.MustCompile(`"((?i)[a-z]*(?:secret|token|password))"\s*:\s*"(?:[^"\\]|\\.)*"`)

// redact blanks the secrets of a body quoted in a failure, so test output shows none.
func redact(body []byte) []byte {
	return secretField.ReplaceAll(body, []byte(`"$1":"(redacted)"`))
}

// oddPath reports whether an escaped request path has empty or dot segments, or encoded
// slashes or dots.
func oddPath(p string) bool {
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." || strings.Contains(strings.ToLower(seg), "%2") {
			return true
		}
	}
	return false
}

// routerRefusal reports whether a response is the router's answer to a route it does not
// have: 404 route_not_found, 405 method_not_allowed or 501.
func routerRefusal(ex *exchange) bool {
	switch ex.status {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	case http.StatusNotFound:
		var p struct{ Code string }
		return json.Unmarshal(ex.respBody, &p) == nil && p.Code == "route_not_found"
	}
	return false
}

func describe(op, what string, errs []*verrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		msg := fmt.Sprintf("%s: %s: %s", op, what, e.Message)
		if e.Reason != "" && e.Reason != e.Message {
			msg += " (" + e.Reason + ")"
		}
		for _, s := range e.SchemaValidationErrors {
			msg += fmt.Sprintf("; %s at %s", s.Reason, s.FieldPath)
		}
		out = append(out, msg)
	}
	return out
}

// Count is how many exchanges of one operation were validated.
type Count struct {
	// Exchanges counts them all; Accepted those answered 2xx, whose requests were validated
	// too.
	Exchanges, Accepted int
}

// Exercised returns the documented operations this process has validated exchanges of, with
// how many each.
func Exercised() map[string]Count {
	c, err := shared()
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Count, len(c.seen))
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}

// Operations returns every documented operation.
func Operations() []string {
	c, err := shared()
	if err != nil {
		return nil
	}
	var out []string
	for _, op := range c.ops {
		out = append(out, op.name)
	}
	slices.Sort(out)
	return out
}

// session collects one test's failures and reports them when the test ends.
type session struct {
	c        *checker
	mu       sync.Mutex
	failures []string
}

func newSession(t testing.TB) *session {
	t.Helper()
	c, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	s := &session{c: c}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		const shown = 30
		for i, f := range s.failures {
			if i == shown {
				t.Errorf("openapi: and %d more mismatches", len(s.failures)-shown)
				break
			}
			t.Errorf("openapi: %s", f)
		}
	})
	return s
}

func (s *session) record(ex *exchange) {
	if f := s.c.check(ex); len(f) > 0 {
		s.mu.Lock()
		s.failures = append(s.failures, f...)
		s.mu.Unlock()
	}
}

// Handler wraps next so that every exchange through it is checked against the document;
// mismatches fail t when it ends. The request body is copied as the handler reads it, never
// read ahead of it, and the response is written through as it is produced.
func Handler(t testing.TB, next http.Handler) http.Handler {
	t.Helper()
	return newSession(t).handler(next)
}

func (s *session) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &teeBody{rc: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			// A shallow copy: the server inspects the original request's Body after the
			// handler (to decide whether to drain it), which must stay its own type.
			r = r.WithContext(r.Context())
			r.Body = body
		}
		cw := &captureWriter{w: w}
		next.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.WriteHeader(http.StatusOK)
		}
		// The client has its answer before the validation runs, so checking adds no latency
		// a test could mistake for the API's.
		_ = http.NewResponseController(w).Flush()
		complete := true
		if cw.status >= 200 && cw.status < 300 && r.Body == body {
			// Whatever of an accepted body the handler left unread is part of the request.
			_, err := io.Copy(io.Discard, body)
			complete = err == nil && !body.over
		}
		s.record(&exchange{
			req: r, reqBody: body.buf.Bytes(), reqComplete: complete,
			status: cw.status, header: cw.header, respBody: cw.buf.Bytes(), respComplete: !cw.over,
		})
	})
}

// teeBody keeps a copy of what is read from a request body, up to captureLimit.
type teeBody struct {
	rc   io.ReadCloser
	buf  bytes.Buffer
	over bool
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		if b.buf.Len()+n > captureLimit {
			b.over = true
		} else {
			b.buf.Write(p[:n])
		}
	}
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }

// captureWriter writes through to w and keeps the status, the headers as sent and up to
// captureLimit bytes of the body.
type captureWriter struct {
	w      http.ResponseWriter
	status int
	header http.Header
	buf    bytes.Buffer
	over   bool
}

func (c *captureWriter) Header() http.Header { return c.w.Header() }

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
		c.header = c.w.Header().Clone()
	}
	c.w.WriteHeader(code)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.buf.Len()+len(p) > captureLimit {
		c.over = true
	} else {
		c.buf.Write(p)
	}
	return c.w.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush, deadlines).
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.w }

// Client returns an HTTP client whose exchanges are checked against the document;
// mismatches fail t when it ends. It does not follow redirects' checks beyond the first
// exchange's: each hop is checked on its own.
func Client(t testing.TB) *http.Client {
	t.Helper()
	return &http.Client{Transport: &transport{s: newSession(t), base: http.DefaultTransport}}
}

// Transport wraps base (http.DefaultTransport when nil) so that every exchange through it is
// checked against the document; mismatches fail t when it ends.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{s: newSession(t), base: base}
}

type transport struct {
	s    *session
	base http.RoundTripper
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	var reqBody []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := tr.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, captureLimit+1))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(respBody), rest), rest}
	if err != nil {
		return resp, nil // the caller sees the same read error
	}
	complete := len(respBody) <= captureLimit
	tr.s.record(&exchange{
		req: r, reqBody: reqBody, reqComplete: true,
		status: resp.StatusCode, header: resp.Header, respBody: respBody, respComplete: complete,
	})
	return resp, nil
}
