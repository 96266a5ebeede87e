package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// clientNow is the fixed clock of client tests (2027-01-15).
const clientNow = 1_800_000_000

func loopbackNets(t testing.TB) []*net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return []*net.IPNet{n}
}

// newTestClient returns a client allowed to reach 127.0.0.0/8, with a fixed clock unless cfg
// sets one.
func newTestClient(t testing.TB, cfg webhook.ClientConfig) *webhook.Client {
	t.Helper()
	if cfg.AllowNets == nil {
		cfg.AllowNets = loopbackNets(t)
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = fixedClock(clientNow)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "Dispatch24/test"
	}
	c, err := webhook.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func testRequest(url string) *webhook.Request {
	return &webhook.Request{
		URL:       url,
		MessageID: "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W",
		EventType: "survey.session.submitted",
		Body:      []byte(`{"id":"evt_2KWPBgLlAfxdpx2AI54pPJ85f4W","type":"survey.session.submitted"}`),
		Secrets:   []string{vectorSecret},
	}
}

func TestSendDelivers(t *testing.T) {
	t.Parallel()
	type received struct {
		header http.Header
		body   []byte
	}
	got := make(chan received, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), body}
		_, _ = io.WriteString(w, "thanks")
	})
	c := newTestClient(t, webhook.ClientConfig{})
	req := testRequest(srv.URL + "/hook?x=1")
	req.Secrets = []string{otherSecret, vectorSecret} // during a rotation
	req.JWTKey = []byte(testJWTSecret)
	req.Issuer = "intake24"
	req.Username, req.SurveyID, req.SessionID, req.UserID, req.SubmissionID = "resp-1", "demo-survey", "ses_1", "usr_1", "sub_1"
	req.Header = http.Header{"traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}

	res := c.Send(context.Background(), req)
	if !res.Delivered || res.StatusCode != 200 || res.Code != "" || res.Err != nil || string(res.ResponseBody) != "thanks" {
		t.Fatalf("Send = %+v", res)
	}
	if res.StartedAt.Unix() != clientNow || res.Detail() != "" {
		t.Errorf("StartedAt = %v, Detail = %q", res.StartedAt, res.Detail())
	}
	r := <-got

	// Exactly the contract's headers, plus the framing header Go adds.
	wantKeys := []string{"Authorization", "Content-Length", "Content-Type", "Traceparent", "User-Agent", "Webhook-Id", "Webhook-Signature", "Webhook-Timestamp"}
	if keys := slices.Sorted(maps.Keys(r.header)); !slices.Equal(keys, wantKeys) {
		t.Errorf("headers = %v, want %v", keys, wantKeys)
	}
	for k, want := range map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "Dispatch24/test",
		"Webhook-Id":        req.MessageID,
		"Webhook-Timestamp": strconv.Itoa(clientNow),
		"Traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if r.header.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, r.header.Get(k), want)
		}
	}
	if !bytes.Equal(r.body, req.Body) {
		t.Errorf("body = %q, want %q", r.body, req.Body)
	}

	// Both signatures, checked with the independent HMAC.
	wantSig := refSignature(t, otherSecret, req.MessageID, clientNow, req.Body) + " " + refSignature(t, vectorSecret, req.MessageID, clientNow, req.Body)
	if sig := r.header.Get("Webhook-Signature"); sig != wantSig {
		t.Errorf("webhook-signature = %q, want %q", sig, wantSig)
	}

	// The JWT, checked by hand.
	token, ok := strings.CutPrefix(r.header.Get("Authorization"), "Bearer ")
	if !ok {
		t.Fatalf("Authorization = %q", r.header.Get("Authorization"))
	}
	_, claims := refVerifyJWT(t, token, []byte(testJWTSecret))
	for k, want := range map[string]any{
		"iss": "intake24", "aud": req.URL, "sub": "resp-1", "type": "survey.session.submitted",
		"surveyId": "demo-survey", "sessionId": "ses_1", "userId": "usr_1", "submissionId": "sub_1",
		"iat": json.Number(strconv.Itoa(clientNow)), "exp": json.Number(strconv.Itoa(clientNow + 300)),
		"bodySha256": refBodySHA256(req.Body),
	} {
		if claims[k] != want {
			t.Errorf("claim %s = %#v, want %#v", k, claims[k], want)
		}
	}

	// And the package's own Verifier accepts it with either secret.
	for _, secret := range []string{vectorSecret, otherSecret} {
		v := newVerifier(t, webhook.VerifierConfig{
			Secrets: []string{secret}, JWTSecret: testJWTSecret, Audience: req.URL, NowFunc: fixedClock(clientNow + 10),
		})
		if _, err := v.Verify(r.header, r.body); err != nil {
			t.Errorf("Verify with one secret: %v", err)
		}
	}
}

// A v1a endpoint during a move from v1: the request carries the whsec_ secret and the whsk_ key,
// and a receiver verifying through the Middleware accepts it with either the secret or the
// public key alone.
func TestSendV1aThroughMiddleware(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, webhook.ClientConfig{NowFunc: time.Now})
	newKey, newPublic := webhook.NewSigningKey()
	tests := []struct {
		name    string
		secrets []string
		cfg     webhook.VerifierConfig
		want    int
	}{
		{"v1a only", []string{newKey}, webhook.VerifierConfig{PublicKeys: []string{newPublic}}, http.StatusNoContent},
		{"v1a rotation, old key", []string{newKey, vectorSigningKey}, webhook.VerifierConfig{PublicKeys: []string{vectorPublicKey}}, http.StatusNoContent},
		{"v1 and v1a, receiver has the secret", []string{vectorSecret, newKey}, webhook.VerifierConfig{Secrets: []string{vectorSecret}}, http.StatusNoContent},
		{"v1 and v1a, receiver has the public key", []string{vectorSecret, newKey}, webhook.VerifierConfig{PublicKeys: []string{newPublic}}, http.StatusNoContent},
		{"another key", []string{newKey}, webhook.VerifierConfig{PublicKeys: []string{vectorPublicKey}}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan []byte, 1)
			tt.cfg.NowFunc = time.Now
			v := newVerifier(t, tt.cfg)
			srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got <- body
				w.WriteHeader(http.StatusNoContent)
			})))
			t.Cleanup(srv.Close)
			req := testRequest(srv.URL + "/hook")
			req.Secrets = tt.secrets
			res := c.Send(context.Background(), req)
			if res.StatusCode != tt.want {
				t.Fatalf("Send = %+v, want HTTP %d", res, tt.want)
			}
			if tt.want == http.StatusNoContent {
				if body := <-got; !bytes.Equal(body, req.Body) {
					t.Errorf("handler saw body %q", body)
				}
			}
		})
	}
}

func TestSendWithoutJWTKeySendsNoAuthorization(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	c := newTestClient(t, webhook.ClientConfig{})
	req := testRequest(srv.URL)
	// Extra headers cannot replace the contract's.
	req.Header = http.Header{"webhook-id": {"forged"}, "Authorization": {"Basic Zm9vOmJhcg=="}, "Content-Type": {"text/plain"}}
	if res := c.Send(context.Background(), req); !res.Delivered {
		t.Fatalf("Send = %+v", res)
	}
	h := <-got
	if h.Get("Authorization") != "" || h.Get("Webhook-Id") != req.MessageID || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", h)
	}
	if len(h.Values("Webhook-Id")) != 1 {
		t.Errorf("webhook-id sent %d times", len(h.Values("Webhook-Id")))
	}
}

func TestSendOutcomes(t *testing.T) {
	t.Parallel()
	retryDate := time.Unix(clientNow+90, 0).UTC().Format(http.TimeFormat)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    webhook.Result // Delivered, StatusCode, Code, Gone, RetryAfter are compared
		body    string
	}{
		{
			name:    "204",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			want:    webhook.Result{Delivered: true, StatusCode: 204},
		},
		{
			name: "500 keeps the body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "30") // ignored: only 429 and 503 delay
				http.Error(w, "database down", http.StatusInternalServerError)
			},
			want: webhook.Result{StatusCode: 500, Code: webhook.CodeHTTPStatus},
			body: "database down\n",
		},
		{
			name:    "410 Gone",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) },
			want:    webhook.Result{StatusCode: 410, Code: webhook.CodeHTTPStatus, Gone: true},
		},
		{
			name: "429 with Retry-After seconds",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			want: webhook.Result{StatusCode: 429, Code: webhook.CodeHTTPStatus, RetryAfter: 2 * time.Minute},
		},
		{
			name: "429 with Retry-After date",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", retryDate)
				w.WriteHeader(http.StatusTooManyRequests)
			},
			want: webhook.Result{StatusCode: 429, Code: webhook.CodeHTTPStatus, RetryAfter: 90 * time.Second},
		},
		{
			name: "503 with a huge Retry-After is capped",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "99999999999999999999")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			want: webhook.Result{StatusCode: 503, Code: webhook.CodeHTTPStatus, RetryAfter: time.Hour},
		},
		{
			name: "503 with a garbage Retry-After",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "soon")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			want: webhook.Result{StatusCode: 503, Code: webhook.CodeHTTPStatus},
		},
		{
			name: "big body is cut to 4 KiB",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(bytes.Repeat([]byte("x"), 100<<10))
			},
			want: webhook.Result{Delivered: true, StatusCode: 200},
			body: strings.Repeat("x", webhook.MaxResponseBodyBytes),
		},
	}
	c := newTestClient(t, webhook.ClientConfig{MaxRetryAfter: time.Hour})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tt.handler)
			res := c.Send(context.Background(), testRequest(srv.URL))
			if res.Delivered != tt.want.Delivered || res.StatusCode != tt.want.StatusCode || res.Code != tt.want.Code ||
				res.Gone != tt.want.Gone || res.RetryAfter != tt.want.RetryAfter || res.Err != nil {
				t.Fatalf("Send = %+v\nwant %+v", res, tt.want)
			}
			if string(res.ResponseBody) != tt.body {
				t.Errorf("ResponseBody = %d bytes %.40q, want %d bytes", len(res.ResponseBody), res.ResponseBody, len(tt.body))
			}
		})
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	res := newTestClient(t, webhook.ClientConfig{}).Send(context.Background(), testRequest(srv.URL+"/hook"))
	if res.Delivered || res.StatusCode != http.StatusFound || res.Code != webhook.CodeRedirect {
		t.Fatalf("Send = %+v", res)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("redirect target was hit %d times", n)
	}
	if res.Detail() != "HTTP 302 Found" {
		t.Errorf("Detail = %q", res.Detail())
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Reading the body first lets the server notice when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done(): // the client gave up and closed the connection
		case <-time.After(30 * time.Second):
		}
	})
	c := newTestClient(t, webhook.ClientConfig{Timeout: 50 * time.Millisecond})
	res := c.Send(context.Background(), testRequest(srv.URL))
	if res.Delivered || res.Code != webhook.CodeTimeout || res.StatusCode != 0 || res.Err == nil {
		t.Fatalf("Send = %+v", res)
	}
	if strings.Contains(res.Detail(), srv.URL) {
		t.Errorf("Detail %q repeats the URL", res.Detail())
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	res := newTestClient(t, webhook.ClientConfig{}).Send(context.Background(), testRequest("http://"+addr+"/hook"))
	if res.Delivered || res.Code != webhook.CodeConnection || res.Err == nil {
		t.Fatalf("Send = %+v", res)
	}
}

func TestSendBlockedAddress(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	_, other, _ := net.ParseCIDR("10.0.0.0/8")
	c := newTestClient(t, webhook.ClientConfig{AllowNets: []*net.IPNet{other}})

	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		res := c.Send(context.Background(), testRequest(u))
		if res.Delivered || res.Code != webhook.CodeBlockedAddress || !errors.Is(res.Err, webhook.ErrBlockedAddress) {
			t.Fatalf("Send(%s) = %+v", u, res)
		}
		var be *webhook.BlockedAddressError
		if !errors.As(res.Err, &be) || !be.Addr.IsLoopback() {
			t.Errorf("Send(%s): err = %v, want a *BlockedAddressError for a loopback address", u, res.Err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("blocked receiver got %d requests", n)
	}
}

func TestSendTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	res := newTestClient(t, webhook.ClientConfig{}).Send(context.Background(), testRequest(srv.URL))
	if res.Delivered || res.Code != webhook.CodeTLS {
		t.Fatalf("Send to an untrusted certificate = %+v", res)
	}

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	trusting := newTestClient(t, webhook.ClientConfig{TLSConfig: &tls.Config{RootCAs: roots}})
	if res := trusting.Send(context.Background(), testRequest(srv.URL)); !res.Delivered {
		t.Fatalf("Send with the server's root = %+v", res)
	}
}

func TestSendCanceled(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := newTestClient(t, webhook.ClientConfig{}).Send(ctx, testRequest(srv.URL))
	if res.Delivered || res.Code != webhook.CodeCanceled {
		t.Fatalf("Send = %+v", res)
	}
}

func TestSendInvalidRequest(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, webhook.ClientConfig{})
	tests := map[string]func(*webhook.Request){
		"bad secret":   func(r *webhook.Request) { r.Secrets = []string{"whsec_tooshort"} },
		"no secret":    func(r *webhook.Request) { r.Secrets = nil },
		"bad key":      func(r *webhook.Request) { r.Secrets = []string{vectorSecret, "whsk_tooshort"} },
		"public key":   func(r *webhook.Request) { r.Secrets = []string{vectorPublicKey} },
		"no id":        func(r *webhook.Request) { r.MessageID = "" },
		"ftp URL":      func(r *webhook.Request) { r.URL = "ftp://127.0.0.1/x" },
		"unparseable":  func(r *webhook.Request) { r.URL = "http://[::1" },
		"relative URL": func(r *webhook.Request) { r.URL = "/hook" },
		"credentials":  func(r *webhook.Request) { r.URL = "http://user:tooshort@127.0.0.1:1/hook" },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := testRequest("http://127.0.0.1:1/hook")
			edit(req)
			res := c.Send(context.Background(), req)
			if res.Delivered || res.Code != webhook.CodeInvalidRequest || res.Err == nil {
				t.Fatalf("Send = %+v", res)
			}
			if strings.Contains(res.Err.Error(), "tooshort") {
				t.Errorf("error %q repeats the secret", res.Err)
			}
		})
	}
}

// Many concurrent attempts over shared connections, for the race detector.
func TestSendConcurrent(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
	})
	c := newTestClient(t, webhook.ClientConfig{})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			req := testRequest(srv.URL)
			req.MessageID = "evt_" + strconv.Itoa(i)
			req.JWTKey = []byte(testJWTSecret)
			if i%2 == 1 {
				// v1a attempts share the client's parsed keys.
				req.Secrets = []string{vectorSigningKey, vectorSecret}
			}
			if res := c.Send(context.Background(), req); !res.Delivered {
				t.Errorf("Send %d = %+v", i, res)
			}
		})
	}
	wg.Wait()
	if n.Load() != 50 {
		t.Errorf("receiver got %d deliveries, want 50", n.Load())
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]webhook.ClientConfig{
		"negative timeout": {Timeout: -time.Second},
		"bad allow net":    {AllowNets: []*net.IPNet{{IP: net.IPv4(10, 0, 0, 0), Mask: net.IPMask{255, 0, 255, 0}}}},
	} {
		if _, err := webhook.NewClient(cfg); err == nil {
			t.Errorf("%s: NewClient succeeded", name)
		}
	}
}
