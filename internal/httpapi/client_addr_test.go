package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// TestClientAddr: X-Forwarded-For is read only when the TCP peer is a trusted proxy, from the
// right, and the right-most address that is not itself trusted is the client. Regression
// for issue 11: behind a proxy every client shared the proxy's address (and its lockout).
func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := prefixes("10.0.0.0/8", "fd00::/8")
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy trusted, header ignored", "203.0.113.5:1000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer, one hop", "10.0.0.2:1000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries left of the real one are ignored", "10.0.0.2:1000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"a chain of trusted proxies", "10.0.0.2:1000", []string{"198.51.100.1, 10.9.9.9, 10.0.0.3"}, "198.51.100.1"},
		{"several header lines are one list", "10.0.0.2:1000", []string{"6.6.6.6, 198.51.100.1", "10.0.0.3"}, "198.51.100.1"},
		{"untrusted peer spoofing a trusted hop", "203.0.113.5:1000", []string{"10.0.0.9"}, "203.0.113.5"},
		{"trusted peer, no header", "10.0.0.2:1000", nil, "10.0.0.2"},
		{"every hop trusted: the left-most", "10.0.0.2:1000", []string{"10.0.0.7, 10.0.0.3"}, "10.0.0.7"},
		{"garbage stops at the last hop believed", "10.0.0.2:1000", []string{"198.51.100.1, not-an-ip, 10.0.0.3"}, "10.0.0.3"},
		{"port and brackets", "10.0.0.2:1000", []string{"[2001:db8::1]:443, 198.51.100.1:80"}, "198.51.100.1"},
		{"bracketed IPv6", "[fd00::1]:1000", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"IPv4-mapped trusted peer", "[::ffff:10.0.0.2]:1000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped hop", "10.0.0.2:1000", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
	} {
		if got := httpapi.ClientAddr(trusted, tc.peer, tc.xff); got != tc.want {
			t.Errorf("%s: ClientAddr(%s, %q) = %s, want %s", tc.name, tc.peer, tc.xff, got, tc.want)
		}
	}
	if got := httpapi.ClientAddr(nil, "10.0.0.2:1000", []string{"198.51.100.1"}); got != "10.0.0.2" {
		t.Errorf("no trusted proxies: %s", got)
	}
}

// TestClientAddress: the wrapper puts the address where ClientIP (rate limits, logs) reads it;
// with no trusted proxies X-Forwarded-For is never read.
func TestClientAddress(t *testing.T) {
	t.Parallel()
	var got string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = httpapi.ClientIP(r) })
	for _, tc := range []struct {
		trusted []netip.Prefix
		want    string
	}{{nil, "10.0.0.2"}, {prefixes("10.0.0.0/8"), "198.51.100.1"}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.2:1000"
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		httpapi.ClientAddress(tc.trusted, h).ServeHTTP(httptest.NewRecorder(), r)
		if got != tc.want {
			t.Errorf("trusted %v: ClientIP %s, want %s", tc.trusted, got, tc.want)
		}
	}
}

// FuzzClientAddr: whatever the header holds, the answer is the peer or an address the header
// names, and never an address left of an untrusted hop.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.2:1", "198.51.100.1, 10.0.0.3")
	f.Add("[fd00::1]:1", "[2001:db8::1]:443,,garbage")
	f.Add("10.0.0.2:1", strings.Repeat("10.0.0.1,", 100))
	trusted := prefixes("10.0.0.0/8", "fd00::/8")
	isTrusted := func(a netip.Addr) bool {
		return trusted[0].Contains(a.Unmap()) || trusted[1].Contains(a.WithZone(""))
	}
	parse := func(s string) (netip.Addr, bool) {
		s = strings.TrimSpace(s)
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone(""), true
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap().WithZone(""), true
		}
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
				return a.Unmap().WithZone(""), true
			}
		}
		return netip.Addr{}, false
	}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		got := httpapi.ClientAddr(trusted, peer, []string{xff})
		pa, err := netip.ParseAddrPort(peer)
		if err != nil || !isTrusted(pa.Addr()) {
			// An untrusted (or unreadable) peer: the header is never read.
			if strings.Contains(peer, ":") && err == nil && got != pa.Addr().String() {
				t.Fatalf("untrusted peer %q: got %q", peer, got)
			}
			return
		}
		hops := strings.Split(xff, ",")
		// Walk as the rule says and check the answer is where the walk stops.
		want := pa.Addr().Unmap().WithZone("")
		for i, n := len(hops)-1, 0; i >= 0 && n < 32; i, n = i-1, n+1 {
			a, ok := parse(hops[i])
			if !ok {
				break
			}
			want = a
			if !isTrusted(a) {
				break
			}
		}
		if got != want.String() {
			t.Fatalf("ClientAddr(%q, %q) = %q, want %q", peer, xff, got, want)
		}
	})
}
