package webhook_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// TestSendReason: a failed attempt keeps a detail for the attempt log (issue 16 item 5: it
// said only connection_error), and the detail never names the address dialled.
func TestSendReason(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/hook"
	_ = ln.Close()

	hanging := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	})
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	hangUp := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	unavailable := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	moved := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.1.2.3/elsewhere", http.StatusFound)
	})

	cases := []struct {
		name   string
		url    string
		code   webhook.ErrorCode
		reason string
	}{
		{"refused", refused, webhook.CodeConnection, "connection refused"},
		{"timeout", hanging.URL, webhook.CodeTimeout, "no complete answer within 200ms"},
		{"untrusted certificate", untrusted.URL, webhook.CodeTLS, "TLS: certificate signed by an unknown authority"},
		{"https to a plain server", strings.Replace(plain.URL, "http://", "https://", 1), webhook.CodeConnection, "plain HTTP answer to an https URL"},
		{"hung up", hangUp.URL, webhook.CodeConnection, "EOF: the connection closed before a complete answer"},
		{"503", unavailable.URL, webhook.CodeHTTPStatus, "HTTP 503 Service Unavailable"},
		{"redirect", moved.URL, webhook.CodeRedirect, "HTTP 302 Found (redirects are not followed)"},
	}
	// Only the hanging receiver meets the short timeout; the others answer (or fail) at once,
	// and get a generous bound so a loaded machine cannot turn them into timeouts.
	short := newTestClient(t, webhook.ClientConfig{Timeout: 200 * time.Millisecond})
	c := newTestClient(t, webhook.ClientConfig{Timeout: 30 * time.Second})
	for _, tc := range cases {
		client := c
		if tc.code == webhook.CodeTimeout {
			client = short
		}
		res := client.Send(context.Background(), testRequest(tc.url))
		if res.Delivered || res.Code != tc.code || res.Reason != tc.reason {
			t.Errorf("%s: code %q reason %q, want %q %q (detail %q)", tc.name, res.Code, res.Reason, tc.code, tc.reason, res.Detail())
		}
		host := strings.TrimPrefix(strings.TrimPrefix(tc.url, "http://"), "https://")
		host = strings.TrimSuffix(host, "/hook")
		if strings.Contains(res.Reason, "127.0.0.1") || strings.Contains(res.Reason, host) || strings.Contains(res.Reason, "dial") ||
			strings.Contains(res.Reason, "10.1.2.3") {
			t.Errorf("%s: reason %q names an address", tc.name, res.Reason)
		}
	}

	// A blocked address keeps its bare code: its message is the registration's.
	strict, err := webhook.NewClient(webhook.ClientConfig{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(strict.Close)
	if res := strict.Send(context.Background(), testRequest(plain.URL)); res.Code != webhook.CodeBlockedAddress || res.Reason != "" {
		t.Errorf("blocked: code %q reason %q, want blocked_address and no reason", res.Code, res.Reason)
	}
	// A delivered attempt has none.
	ok := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	if res := c.Send(context.Background(), testRequest(ok.URL)); !res.Delivered || res.Reason != "" {
		t.Errorf("delivered: %+v", res)
	}
}
