package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// TestHostileInput sends one corpus of hostile requests to every route of the API's own route
// table (so a new route is covered without touching this test), anonymously, as an admin and
// as a respondent, over a real HTTP server with the binary's timeouts and limits, on both
// stores. Nothing may answer 5xx (but a deliberate 501 for an invented method, or 503 with
// Retry-After or from /readyz) or log at ERROR, no metric series may appear whose labels are
// not drawn from the route table and the fixed sets of methods, status codes and event types,
// and the heap after the run may not have grown past a generous bound.
//
// It is not parallel: the heap is measured for this test alone.
func TestHostileInput(t *testing.T) {
	for _, tc := range bothStores() {
		t.Run(tc.name, func(t *testing.T) { hostileRun(t, tc.vars(t)) })
	}
}

const (
	hostileSurvey = "hostile-s"
	madeUpID      = "x0123456789"
	// inventedMarker is in every invented method and odd path: it must not reach /metrics.
	inventedMarker = "ZQXJ"
)

func hostileRun(t *testing.T, vars map[string]string) {
	a := buildAPI(t, vars)
	addr := serveAPI(t, a)

	// A survey with a respondent, so survey routes reach their handlers with a real id.
	admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
	if w := a.do(t, "POST", "/api/admin/surveys", `{"id":"`+hostileSurvey+`","name":"Hostile"}`, admin); w.Code != http.StatusCreated {
		t.Fatalf("creating the survey: %d %s", w.Code, w.Body.String())
	}
	if w := a.do(t, "POST", "/api/admin/surveys/"+hostileSurvey+"/respondents",
		`{"username":"resp","password":"respondent password"}`, admin); w.Code != http.StatusCreated {
		t.Fatalf("creating the respondent: %d %s", w.Code, w.Body.String())
	}
	respondent := a.token(t, "/api/signin/alias", `{"surveyId":"`+hostileSurvey+`","userName":"resp","password":"respondent password"}`)

	// Routes that change or end things go last, so the walk keeps its identities.
	routes := a.routes
	sort.SliceStable(routes, func(i, j int) bool {
		return !strings.HasPrefix(routes[i].Pattern, "DELETE ") && strings.HasPrefix(routes[j].Pattern, "DELETE ")
	})
	if len(routes) < 30 {
		t.Fatalf("only %d routes", len(routes))
	}

	before := seriesOf(t, a)
	heapBefore := heapAfterGC()

	var jobs []hostileJob
	for _, rt := range routes {
		for _, who := range []struct{ name, token string }{{"anonymous", ""}, {"admin", admin}, {"respondent", respondent}} {
			for _, req := range hostileCorpus(rt.Pattern, who.token, who.name == "admin") {
				jobs = append(jobs, hostileJob{route: rt.Pattern, who: who.name, req: req})
			}
		}
	}
	for range 200 { // enough invented methods that a label per method would show
		jobs = append(jobs, hostileJob{route: "(invented)", who: "anonymous", req: rawRequest{
			name: "invented method", method: inventedMarker + strconv.Itoa(len(jobs)) + strings.Repeat("M", 8<<10), target: "/api/signin",
		}})
	}
	statuses := runJobs(t, addr, jobs)

	// Nothing may have minted a series outside the closed label sets.
	after := seriesOf(t, a)
	patterns := map[string]string{"unmatched": ""}
	for _, rt := range a.routes {
		m, _, _ := strings.Cut(rt.Pattern, " ")
		patterns[rt.Pattern] = m
	}
	newSeries := 0
	for key, labels := range after {
		if _, ok := before[key]; ok {
			continue
		}
		newSeries++
		if msg := unexpectedSeries(labels, patterns); msg != "" {
			t.Errorf("new series %.200s: %s", key, msg)
		}
		if strings.Contains(key, inventedMarker) {
			t.Errorf("new series %.200s carries request input", key)
		}
	}

	// And as a scraper sees it.
	code, text, err := getAll(addr, "/metrics")
	if err != nil || code != http.StatusOK || !bytes.Contains(text, []byte("dispatch24_http_requests_total")) {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	if bytes.Contains(text, []byte(inventedMarker)) {
		t.Error("/metrics carries request input")
	}

	heapAfter := heapAfterGC()
	growth := int64(heapAfter) - int64(heapBefore)
	t.Logf("%d routes, %d requests, statuses %v; %d new series; heap %d → %d KiB", len(routes), len(jobs),
		statuses, newSeries, heapBefore>>10, heapAfter>>10)
	// Generous: the requests themselves are gone; caches, pools and limiters may keep a little.
	const heapBound = 32 << 20
	if growth > heapBound {
		t.Errorf("heap grew by %d MiB over the run, bound %d MiB", growth>>20, heapBound>>20)
	}

	// Nothing the corpus sent is a server error worth a log line at ERROR.
	for _, line := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("logged: %.300s", line)
		}
	}

	// The walk did no harm the admin cannot see: the admin still works.
	if w := a.do(t, "GET", "/api/admin/users", "", admin); w.Code != http.StatusOK {
		t.Errorf("admin after the walk: %d", w.Code)
	}
}

// serveAPI serves a's handler as run does (httpapi.Serve: the binary's timeouts and header
// limit) on a loopback port, until the test ends, and returns the address.
func serveAPI(t *testing.T, a *api) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- httpapi.Serve(ctx, ln, a.handler, slog.New(slog.NewTextHandler(io.Discard, nil)), 5*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// unexpectedSeries says why a new series may not exist, or "" when its labels all come from
// the closed sets: a route pattern (or "unmatched"), a method that pattern serves (any
// standard one or "other" when unmatched), a status code, a histogram bucket, an event type.
func unexpectedSeries(labels map[string]string, patterns map[string]string) string {
	name := labels["__name__"]
	switch name {
	case "dispatch24_http_requests_total", "dispatch24_http_request_duration_seconds":
	case "dispatch24_events_published_total":
		if t := labels["type"]; !slices.Contains(events.Types, t) && t != events.TypeWebhookTest {
			return "event type " + t
		}
		return ""
	default:
		return "a family the run may not grow"
	}
	route, ok := labels["route"]
	want, known := patterns[route]
	if !ok || !known {
		return "route label is not a pattern"
	}
	if m, ok := labels["method"]; ok {
		switch {
		case route == "unmatched":
			if !httpapi.StandardMethod(m) && m != "other" {
				return "method " + m
			}
		case m != want && !(want == "GET" && m == "HEAD"):
			return "method " + m + " on " + route
		}
	}
	if s, ok := labels["status"]; ok {
		code, err := strconv.Atoi(s)
		if err != nil || http.StatusText(code) == "" {
			return "status " + s
		}
	}
	for k := range labels {
		if !slices.Contains([]string{"__name__", "route", "method", "status"}, k) {
			return "label " + k
		}
	}
	return ""
}

// seriesOf returns every series of the API's registry by a key of its name and labels.
func seriesOf(t *testing.T, a *api) map[string]map[string]string {
	t.Helper()
	families, err := a.env.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{"__name__": f.GetName()}
			key := f.GetName()
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
				key += fmt.Sprintf(" %s=%q", l.GetName(), l.GetValue())
			}
			out[key] = labels
		}
	}
	return out
}

// getAll reads a whole answer (sendRaw keeps the first 4 KiB).
func getAll(addr, path string) (int, []byte, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rawRequest is a request written byte for byte, so that it may hold what a well-behaved
// client would refuse to send.
type rawRequest struct {
	name    string
	method  string
	target  string
	headers [][2]string
	body    []byte
	// declared, when set, is the Content-Length sent instead of the body's length; the body is
	// then followed by a half-close.
	declared string
	// slow sends the body in pieces with pauses (bounded: about 100ms in all).
	slow bool
	// mayDrop: the server may hang up without an answer (it refused to read on).
	mayDrop bool
}

type hostileJob struct {
	route, who string
	req        rawRequest
}

// runJobs sends the jobs from a few workers and fails the test on any 5xx that is not a
// deliberate 503. It returns how many answers each status got.
func runJobs(t *testing.T, addr string, jobs []hostileJob) map[int]int {
	t.Helper()
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		next     = make(chan hostileJob)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				status, header, body, err := sendRaw(addr, j.req)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
				what := fmt.Sprintf("%s as %s: %s %.60q", j.route, j.who, j.req.name, j.req.target)
				switch {
				case err != nil && j.req.mayDrop:
				case err != nil:
					t.Errorf("%s: no answer: %v", what, err)
				case status >= 500 && !deliberate(j.route, status, header, body):
					t.Errorf("%s: %d %.300s", what, status, body)
				}
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	return statuses
}

// deliberate reports whether a 5xx is one the API means: 501 for a method it does not
// implement, 503 with Retry-After (or from /readyz).
func deliberate(route string, status int, header http.Header, body []byte) bool {
	switch status {
	case http.StatusNotImplemented:
		return bytes.Contains(body, []byte(`"code":"method_not_implemented"`))
	case http.StatusServiceUnavailable:
		return header.Get("Retry-After") != "" || route == "GET /readyz"
	}
	return false
}

func sendRaw(addr string, r rawRequest) (int, http.Header, []byte, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.target, addr)
	for _, h := range r.headers {
		fmt.Fprintf(&head, "%s: %s\r\n", h[0], h[1])
	}
	switch {
	case r.declared != "":
		fmt.Fprintf(&head, "Content-Length: %s\r\n", r.declared)
	case r.body != nil:
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(r.body))
	}
	head.WriteString("\r\n")
	// Write errors are not failures: the server may answer and hang up before the body ends.
	if _, err := conn.Write(head.Bytes()); err == nil {
		if r.slow {
			for i, n := 0, (len(r.body)+4)/5; i < len(r.body); i += n {
				if _, err := conn.Write(r.body[i:min(i+n, len(r.body))]); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		} else {
			_, _ = conn.Write(r.body)
		}
		if r.declared != "" {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, resp.Header, body, nil
}

// goodBodies are well-formed bodies of routes that take one, so that each hostile variant of
// them differs from a body the handler would take in one field only. A route missing here is
// still sent the generic corpus.
var goodBodies = map[string]string{
	"POST /api/signin":                                           `{"email":"admin@localhost","password":"not the password"}`,
	"POST /api/signin/alias":                                     `{"surveyId":"hostile-s","userName":"resp","password":"not the password"}`,
	"POST /api/admin/user/personal-access-tokens":                `{"name":"ci token"}`,
	"POST /api/admin/users":                                      `{"email":"new@example.org","password":"a long password","name":"New","roles":["staff"],"surveys":["hostile-s"]}`,
	"PATCH /api/admin/users/{id}":                                `{"name":"Renamed","roles":["staff"],"disabled":false}`,
	"POST /api/admin/deliveries/replay":                          `{"surveyId":"hostile-s","webhookId":"wh","status":["failed"],"type":"survey.session.submitted","since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z","dryRun":true}`,
	"POST /api/admin/surveys":                                    `{"id":"hostile-new","name":"New survey","allowGenUsers":true,"jwtSecret":"0123456789abcdef0123456789abcdef","authUrlTokenLength":24}`,
	"PATCH /api/admin/surveys/{surveyId}":                        `{"name":"Renamed","jwtSecret":"0123456789abcdef0123456789abcdef","authUrlTokenLength":24}`,
	"POST /api/admin/surveys/{surveyId}/respondents":             `{"username":"r2","password":"a password","name":"R","customFields":[{"name":"pid","value":"1"}]}`,
	"PATCH /api/admin/surveys/{surveyId}/respondents/{username}": `{"name":"R","password":"a password","customFields":[{"name":"pid","value":"1"}]}`,
	"POST /api/surveys/{surveyId}/create-user":                   `{"token":"eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImEifQ.c2ln"}`,
	"POST /api/admin/surveys/{surveyId}/webhooks":                `{"url":"https://93.184.215.14/hook","events":["survey.session.submitted"],"description":"a hook"}`,
	"PATCH /api/admin/surveys/{surveyId}/webhooks/{webhookId}":   `{"url":"https://93.184.215.14/hook","events":["survey.session.submitted"],"description":"a hook"}`,
	"POST /api/surveys/{surveyId}/submission":                    `{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T09:00:00Z","meals":[{"name":"Lunch","foods":[{"code":"X","n":1}]}],"customData":{"a":"b"}}`,
	"POST /api/admin/surveys/{surveyId}/respondents/import:csv":  "username,password,name,pid\nr3,a password,R,1\n",
	"POST /console/signin:form":                                  "email=admin%40localhost&password=x",
	"POST /console/replays:form":                                 "surveyId=hostile-s&status=failed",
}

// hostilePathValues replace one path wildcard at a time (written as sent on the wire).
var hostilePathValues = []string{"%00", "a%00b", "%ff", "%c3%28", "\xff\xfe", "%ed%a0%80", strings.Repeat("p", 8<<10), "%2e%2e", "..%2f..%2fetc", "%25", "{surveyId}"}

// hostileQueries are appended to every route's path.
var hostileQueries = []string{
	"surveyId=%00", "webhookId=a%00", "status=%ff", "type=%c3%28", "since=%00", "until=9999-99-99T99:99:99Z",
	"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("v1|1|\x00")),
	"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("1:\x00")),
	"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("v1|99999999999999999999|\xff")),
	"cursor=%00%ff", "limit=1e309", "limit=-1", "limit=99999999999999999999", "flash=%00", "expired=%ff",
	"%00=1", "%ff=%ff", "q=" + strings.Repeat("%41", 8<<10), strings.Repeat("a=1&", 2000), "a=%zz", ";;;&&&==",
}

func hostileCorpus(pattern, token string, full bool) []rawRequest {
	method, path := routePath(pattern, hostileSurvey)
	var auth [][2]string
	if token != "" {
		auth = [][2]string{{"X-Auth-Token", token}}
	}
	with := func(hs ...[2]string) [][2]string { return append(slices.Clone(auth), hs...) }
	jsonCT := [2]string{"Content-Type", "application/json"}
	var out []rawRequest
	add := func(r rawRequest) {
		if r.method == "" {
			r.method = method
		}
		if r.target == "" {
			r.target = path
		}
		if r.headers == nil {
			r.headers = auth
		}
		out = append(out, r)
	}

	// Path values, one wildcard at a time.
	_, rawPath, _ := strings.Cut(pattern, " ")
	wild := pathVar.FindAllString(rawPath, -1)
	for i := range wild {
		for _, v := range hostilePathValues {
			n := -1
			target := pathVar.ReplaceAllStringFunc(strings.ReplaceAll(rawPath, "{$}", ""), func(w string) string {
				n++
				if n == i {
					return v
				}
				if w == "{surveyId}" {
					return hostileSurvey
				}
				return madeUpID
			})
			add(rawRequest{name: "path " + wild[i], target: target})
		}
	}
	// Query values.
	for _, q := range hostileQueries {
		add(rawRequest{name: "query", target: path + "?" + q})
	}
	// Headers used as input, and absurd ones.
	for _, h := range [][][2]string{
		{{"X-Auth-Token", token + "\xff"}},
		{{"X-Auth-Token", "\xc3\x28"}},
		{{"Authorization", "Bearer \xff\xfe"}},
		{{"Authorization", "Basic " + strings.Repeat("A", 30<<10)}},
		{{"Idempotency-Key", "\xff"}},
		{{"Idempotency-Key", strings.Repeat("k", 300)}},
		{{"Idempotency-Key", "a"}, {"Idempotency-Key", "b"}},
		{{"X-Request-Id", strings.Repeat("r", 40<<10)}},
		{{"Content-Type", "application/json; charset=\xff"}},
		{{"Content-Type", "application/json; a=" + strings.Repeat("b", 20<<10)}},
		{{"Cookie", "d24_session=\xff\xfe; d24_session=" + strings.Repeat("c", 10<<10)}},
		{{"Origin", "\xff://\xfe"}, {"Referer", "http://[::1"}},
		{{"Traceparent", "00-" + strings.Repeat("f", 32) + "-" + strings.Repeat("0", 16) + "-01"}},
		{{"Accept-Encoding", strings.Repeat("gzip, ", 5000)}},
	} {
		add(rawRequest{name: "header " + h[0][0], headers: append(slices.Clone(auth), h...)})
	}
	// Headers the server itself must refuse: NUL, too large, too many.
	add(rawRequest{name: "header nul", headers: with([2]string{"X-Auth-Token", "a\x00b"})})
	add(rawRequest{name: "header too large", headers: with([2]string{"X-Big", strings.Repeat("x", 80<<10)})})
	many := slices.Clone(auth)
	for i := range 3000 {
		many = append(many, [2]string{"X-H" + strconv.Itoa(i), "v"})
	}
	add(rawRequest{name: "many headers", headers: many})
	// Methods: invented ones on the route's path, and the lower-case form of its own.
	for _, m := range []string{inventedMarker, "BREW" + inventedMarker, strings.ToLower(method), "PROPFIND"} {
		add(rawRequest{name: "method", method: m})
	}
	add(rawRequest{name: "odd path", target: "/" + inventedMarker + "/%00/%ff" + path})

	// Bodies: hostile variants of the route's good body, one field at a time, and the generic
	// corpus.
	type body struct {
		name, ct string
		b        []byte
	}
	var bodies []body
	if good, ok := goodBodies[pattern]; ok {
		bodies = append(bodies, body{"good", "application/json", []byte(good)})
		for _, v := range jsonVariants(good) {
			bodies = append(bodies, body{"json field", "application/json", v})
		}
	}
	for suffix, ct := range map[string]string{":csv": "text/csv", ":form": "application/x-www-form-urlencoded"} {
		if good, ok := goodBodies[pattern+suffix]; ok {
			bodies = append(bodies, body{"good" + suffix, ct, []byte(good)})
			for _, v := range [][]byte{
				[]byte(strings.Replace(good, "R", "\x00", 1)), []byte(strings.Replace(good, "R", "\xff", 1)),
				[]byte(strings.Replace(good, "=", "=%00", 1)), []byte(strings.Replace(good, "=", "=%ff", 1)),
			} {
				bodies = append(bodies, body{"field" + suffix, ct, v})
			}
		}
	}
	deep := func(open, close string, n int) []byte {
		return []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
	}
	generic := []body{
		{"nul", "application/json", []byte(`{"a":"\u0000","email":"a\u0000@b","name":"\u0000"}`)},
		{"nul key", "application/json", []byte(`{"\u0000":1}`)},
		{"invalid utf8", "application/json", []byte("{\"name\":\"\xff\xfe\",\"email\":\"\xc3\x28\"}")},
		{"huge numbers", "application/json", []byte(`{"a":1e309,"limit":-1E+400,"rateLimit":` + strings.Repeat("9", 400) + `,"authUrlTokenLength":1e400}`)},
		{"non-finite", "application/json", []byte(`{"a":NaN,"b":Infinity}`)},
		{"deep arrays", "application/json", deep("[", "]", 30000)},
		{"deep objects", "application/json", deep(`{"a":`, "}", 9000)},
		{"scalar", "application/json", []byte(`"\u0000"`)},
		{"null", "application/json", []byte(`null`)},
		{"wrong type", "text/plain", []byte(`{"a":"b"}`)},
		{"form", "application/x-www-form-urlencoded", []byte("a=%00&b=%ff&email=\xff")},
		{"multipart", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\x00\r\n--x--\r\n")},
		{"csv", "text/csv", []byte("username,\xff\x00\n\x00,\xff\n")},
		{"utf-16", "application/json; charset=utf-16", []byte("\xff\xfe{\x00}\x00")},
	}
	bodies = append(bodies, generic...)
	for _, b := range bodies {
		add(rawRequest{name: "body " + b.name, headers: with([2]string{"Content-Type", b.ct}), body: b.b})
	}
	if !full {
		return out
	}
	// Size and pace, for one identity: oversized, declared but not sent, declared absurdly,
	// chunked nonsense, and a slow body.
	slowBody := []byte(`{"a":"b"}`)
	if good, ok := goodBodies[pattern]; ok {
		slowBody = []byte(good)
	}
	add(rawRequest{name: "oversized", headers: with(jsonCT), body: bytes.Repeat([]byte("["), 2<<20), mayDrop: true})
	add(rawRequest{name: "declared 1 GiB", headers: with(jsonCT), body: []byte(`{"a":`), declared: strconv.Itoa(1 << 30), mayDrop: true})
	add(rawRequest{name: "declared 1 MiB, sends 5", headers: with(jsonCT), body: []byte(`{"a":`), declared: strconv.Itoa(1 << 20), mayDrop: true})
	add(rawRequest{name: "declared -1", headers: with(jsonCT), body: []byte(`{}`), declared: "-1", mayDrop: true})
	add(rawRequest{name: "declared 20 digits", headers: with(jsonCT), body: []byte(`{}`), declared: "99999999999999999999", mayDrop: true})
	add(rawRequest{name: "chunked nonsense", headers: with(jsonCT, [2]string{"Transfer-Encoding", "chunked"}), body: []byte("zz\r\n{}\r\n0\r\n\r\n"), mayDrop: true})
	add(rawRequest{name: "slow body", headers: with(jsonCT), body: slowBody, slow: true})
	return out
}

// jsonVariants returns good with, one at a time, each string value replaced by one holding
// NUL and by invalid UTF-8, each number by 1e309, and a NUL-holding member added.
func jsonVariants(good string) [][]byte {
	var out [][]byte
	// Strings and numbers are found by a small scan: the good bodies are plain.
	for i := 0; i < len(good); i++ {
		switch c := good[i]; {
		case c == '"':
			j := strings.IndexByte(good[i+1:], '"') + i + 1
			if j+1 < len(good) && good[j+1] == ':' { // a key
				i = j
				continue
			}
			for _, bad := range []string{`"x\u0000y"`, "\"\xff\xfe\"", `"\u0000"`} {
				out = append(out, []byte(good[:i]+bad+good[j+1:]))
			}
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(good) && (good[j] >= '0' && good[j] <= '9' || good[j] == '.') {
				j++
			}
			out = append(out, []byte(good[:i]+"1e309"+good[j:]))
			i = j - 1
		}
	}
	if strings.HasPrefix(good, "{") {
		out = append(out, []byte(`{"extra\u0000":"\u0000",`+good[1:]))
	}
	return out
}

// TestTextRefusedNamingTheField: the routes the audit found answering 500 for a NUL (and
// their neighbours) answer 400 naming the field, on both stores, and store nothing.
func TestTextRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range bothStores() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := buildAPI(t, tc.vars(t))
			admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
			if w := a.do(t, "POST", "/api/admin/surveys", `{"id":"nul-s","name":"NUL"}`, admin); w.Code != http.StatusCreated {
				t.Fatalf("creating the survey: %d %s", w.Code, w.Body.String())
			}
			const nul, bad = `a\u0000b`, "a\xffb"
			cases := []struct {
				method, path, body, token, field string
			}{
				{"POST", "/api/signin", `{"email":"` + nul + `@example.org","password":"x"}`, "", "email"},
				{"POST", "/api/signin", `{"email":"admin@localhost","password":"` + nul + `"}`, "", "password"},
				{"POST", "/api/signin", `{"email":"` + bad + `@example.org","password":"x"}`, "", "email"},
				{"POST", "/api/signin/alias", `{"surveyId":"` + nul + `","userName":"u","password":"x"}`, "", "surveyId"},
				{"POST", "/api/signin/alias", `{"surveyId":"nul-s","userName":"` + nul + `","password":"x"}`, "", "userName"},
				{"POST", "/api/signin/token/%00", "", "", "token"},
				{"POST", "/api/signin/token/ab%ffcd", "", "", "token"},
				{"POST", "/api/admin/deliveries/replay", `{"surveyId":"` + nul + `","status":["failed"]}`, admin, "surveyId"},
				{"POST", "/api/admin/deliveries/replay", `{"surveyId":"nul-s","webhookId":"` + bad + `","status":["failed"]}`, admin, "webhookId"},
				{"POST", "/api/admin/deliveries/x%00/replay", "", admin, "id"},
				{"GET", "/api/admin/replays/%00", "", admin, "replayId"},
				{"GET", "/api/admin/deliveries?surveyId=%00", "", admin, "surveyId"},
				{"GET", "/api/admin/deliveries?webhookId=%ff", "", admin, "webhookId"},
				{"POST", "/api/admin/users", `{"email":"u@example.org","password":"a long password","name":"` + nul + `","roles":["staff"]}`, admin, "name"},
				{"POST", "/api/admin/users", `{"email":"u@example.org","password":"a long password","roles":["staff"],"surveys":["` + nul + `"]}`, admin, "surveys[0]"},
				{"GET", "/api/admin/users/%00", "", admin, "id"},
				{"PATCH", "/api/admin/users/%00", `{"name":"x"}`, admin, "id"},
				{"POST", "/api/admin/user/personal-access-tokens", `{"name":"` + nul + `"}`, admin, "name"},
				{"POST", "/api/admin/surveys/nul-s/webhooks", `{"url":"https://93.184.215.14/h","events":["survey.session.submitted"],"description":"` + nul + `"}`, admin, "description"},
				{"POST", "/api/admin/surveys", `{"id":"nul-2","name":"x","jwtSecret":"0123456789abcdef\u0000123456789abcdef"}`, admin, "jwtSecret"},
				{"PATCH", "/api/admin/surveys/nul-s", `{"jwtSecret":"0123456789abcdef\u0000123456789abcdef"}`, admin, "jwtSecret"},
				{"GET", "/api/admin/surveys/%00", "", admin, "surveyId"},
				{"POST", "/api/admin/surveys/nul-s/respondents", `{"username":"r","password":"` + nul + `"}`, admin, "password"},
				{"GET", "/api/admin/surveys/nul-s/respondents/%00", "", admin, "username"},
				{"POST", "/api/surveys/nul-s/create-user", `{"token":"` + nul + `"}`, "", "token"},
				{"GET", "/nul-s/create-user/%00", "", "", "token"},
			}
			for _, c := range cases {
				w := a.do(t, c.method, c.path, c.body, c.token)
				var p httpapi.Problem
				_ = json.Unmarshal(w.Body.Bytes(), &p)
				if w.Code != http.StatusBadRequest || p.Code != "validation_failed" {
					t.Errorf("%s %s %s: %d %s, want 400 validation_failed", c.method, c.path, c.body, w.Code, w.Body.String())
					continue
				}
				if !slices.ContainsFunc(p.Errors, func(f httpapi.FieldError) bool { return f.Field == c.field }) {
					t.Errorf("%s %s %s: errors %+v, want field %s", c.method, c.path, c.body, p.Errors, c.field)
				}
			}
			// CSV import fields: each bad cell named with its line and column.
			for _, c := range []struct{ csv, field string }{
				{"username,name\nr1,a\x00b\n", "name"},
				{"username,password\nr1,\xff\xfe\n", "password"},
				{"username,pid\nr1,\x00\n", "pid"},
				{"username\n\xc3\x28\n", "username"},
			} {
				r := httptest.NewRequest("POST", "/api/admin/surveys/nul-s/respondents/import", strings.NewReader(c.csv))
				r.Header.Set("Content-Type", "text/csv")
				r.Header.Set("X-Auth-Token", admin)
				w := httptest.NewRecorder()
				a.handler.ServeHTTP(w, r)
				var p httpapi.Problem
				_ = json.Unmarshal(w.Body.Bytes(), &p)
				if w.Code != http.StatusBadRequest || len(p.Errors) == 0 || p.Errors[0].Field != c.field || p.Errors[0].Line != 2 {
					t.Errorf("import %q: %d %s, want 400 naming %s on line 2", c.csv, w.Code, w.Body.String(), c.field)
				}
			}
			// Nothing was stored.
			var n int
			if err := a.env.DB.QueryRow(context.Background(), "SELECT count(*) FROM surveys").Scan(&n); err != nil || n != 1 {
				t.Errorf("surveys: %d %v", n, err)
			}
			if err := a.env.DB.QueryRow(context.Background(), "SELECT count(*) FROM respondents").Scan(&n); err != nil || n != 0 {
				t.Errorf("respondents: %d %v", n, err)
			}
		})
	}
}

// TestDeclaredLengthRefusedAtOnce: a JSON, recall or CSV route answers a Content-Length past
// its limit with 413 before the client sends a byte of the body (the client here never does).
func TestDeclaredLengthRefusedAtOnce(t *testing.T) {
	t.Parallel()
	a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "admin password"})
	addr := serveAPI(t, a)
	admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
	if w := a.do(t, "POST", "/api/admin/surveys", `{"id":"cl-s","name":"CL"}`, admin); w.Code != http.StatusCreated {
		t.Fatalf("creating the survey: %d %s", w.Code, w.Body.String())
	}
	if w := a.do(t, "POST", "/api/admin/surveys/cl-s/respondents", `{"username":"resp","password":"respondent password"}`, admin); w.Code != http.StatusCreated {
		t.Fatalf("creating the respondent: %d %s", w.Code, w.Body.String())
	}
	respondent := a.token(t, "/api/signin/alias", `{"surveyId":"cl-s","userName":"resp","password":"respondent password"}`)
	for _, c := range []struct{ path, token, ct string }{
		{"/api/signin", "", "application/json"},
		{"/api/admin/surveys", admin, "application/json"},
		{"/api/surveys/cl-s/submission", respondent, "application/json"},
		{"/api/admin/surveys/cl-s/respondents/import", admin, "text/csv"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nX-Auth-Token: %s\r\nContent-Length: %d\r\n\r\n",
			c.path, c.ct, c.token, int64(1)<<40)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s: no answer before the body: %v", c.path, err)
		} else if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d, want 413", c.path, resp.StatusCode)
		}
		conn.Close()
	}
}
