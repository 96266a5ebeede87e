package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// fakeResolver answers from a fixed table; other names do not resolve.
type fakeResolver map[string][]string

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = netip.MustParseAddr(a)
	}
	return out, nil
}

var _ webhook.Resolver = fakeResolver(nil)

func testResolver() fakeResolver {
	return fakeResolver{
		"example.org":              {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
		"localhost":                {"127.0.0.1", "::1"},
		"internal.corp":            {"10.0.0.5"},
		"rebind.example":           {"93.184.216.34", "192.168.1.1"}, // one bad answer is enough
		"metadata.google.internal": {"169.254.169.254"},
		"v6only.example":           {"2a00:1450:4001:82a::200e"},
		"ula.example":              {"fd00::1"},
		"empty.example":            {},
	}
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	_, corp, _ := net.ParseCIDR("10.0.0.0/24")
	tests := []struct {
		name        string
		url         string
		allow       []*net.IPNet
		wantBlocked bool // wants ErrBlockedAddress as well as ErrInvalidURL
		wantErr     bool
	}{
		{name: "https name", url: "https://example.org/hooks/intake24?token=abc"},
		{name: "http with port", url: "http://example.org:8080/hook"},
		{name: "IPv6-only host", url: "https://v6only.example/"},
		{name: "public IPv4 literal", url: "https://93.184.216.34/hook"},
		{name: "public IPv6 literal", url: "https://[2606:4700:4700::1111]:443/hook"},
		{name: "uppercase scheme", url: "HTTPS://example.org/"},
		{name: "loopback allowed", url: "http://127.0.0.1:9000/webhook", allow: []*net.IPNet{loopback}},
		{name: "localhost allowed for IPv4 and IPv6", url: "http://localhost:9000/", allow: []*net.IPNet{loopback, mustCIDR(t, "::1/128")}},
		{name: "private host inside an allowed net", url: "https://internal.corp/hook", allow: []*net.IPNet{corp}},

		{name: "loopback", url: "http://127.0.0.1:9000/webhook", wantBlocked: true},
		{name: "localhost", url: "http://localhost/", wantBlocked: true},
		{name: "localhost, only IPv4 allowed", url: "http://localhost/", allow: []*net.IPNet{loopback}, wantBlocked: true},
		{name: "private name", url: "https://internal.corp/", wantBlocked: true},
		{name: "private literal", url: "https://192.168.0.10/", wantBlocked: true},
		{name: "one private answer among public", url: "https://rebind.example/", wantBlocked: true},
		{name: "cloud metadata", url: "http://metadata.google.internal/computeMetadata/v1/", wantBlocked: true},
		{name: "metadata literal", url: "http://169.254.169.254/latest/meta-data/", wantBlocked: true},
		{name: "IPv6 loopback", url: "http://[::1]/", wantBlocked: true},
		{name: "IPv4-mapped loopback", url: "http://[::ffff:127.0.0.1]/", wantBlocked: true},
		{name: "IPv6 link-local with zone", url: "http://[fe80::1%25eth0]/", wantBlocked: true},
		{name: "ULA name", url: "https://ula.example/", wantBlocked: true},
		{name: "unspecified", url: "http://0.0.0.0:8080/", wantBlocked: true},
		{name: "CGNAT", url: "http://100.64.1.1/", wantBlocked: true},
		{name: "outside the allowed net", url: "https://10.0.1.5/", allow: []*net.IPNet{corp}, wantBlocked: true},

		{name: "ftp", url: "ftp://example.org/", wantErr: true},
		{name: "javascript", url: "javascript:alert(1)", wantErr: true},
		{name: "no scheme", url: "example.org/hook", wantErr: true},
		{name: "scheme-relative", url: "//example.org/hook", wantErr: true},
		{name: "opaque", url: "http:example.org", wantErr: true},
		{name: "credentials", url: "https://user:pass@example.org/", wantErr: true},
		{name: "user only", url: "https://user@example.org/", wantErr: true},
		{name: "no host", url: "https:///hook", wantErr: true},
		{name: "port only", url: "http://:80/", wantErr: true},
		{name: "port zero", url: "http://example.org:0/", wantErr: true},
		{name: "port too big", url: "http://example.org:65536/", wantErr: true},
		{name: "does not resolve", url: "https://nowhere.example/", wantErr: true},
		{name: "resolves to nothing", url: "https://empty.example/", wantErr: true},
		{name: "bad syntax", url: "http://[::1/", wantErr: true},
		{name: "control character", url: "http://example.org/\x00", wantErr: true},
		{name: "too long", url: "https://example.org/" + strings.Repeat("a", webhook.MaxURLLength), wantErr: true},
		{name: "empty", url: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.ValidateURL(context.Background(), tt.url, tt.allow, testResolver())
			switch {
			case tt.wantBlocked:
				if !errors.Is(err, webhook.ErrInvalidURL) || !errors.Is(err, webhook.ErrBlockedAddress) {
					t.Fatalf("ValidateURL(%q) = %v, want ErrInvalidURL and ErrBlockedAddress", tt.url, err)
				}
			case tt.wantErr:
				if !errors.Is(err, webhook.ErrInvalidURL) || errors.Is(err, webhook.ErrBlockedAddress) {
					t.Fatalf("ValidateURL(%q) = %v, want ErrInvalidURL only", tt.url, err)
				}
			case err != nil:
				t.Fatalf("ValidateURL(%q) = %v", tt.url, err)
			}
		})
	}
}

// TestValidateURLDoesNotRevealResolvedAddresses: a name that resolves to a private address, a
// name that does not resolve and a private literal get the same message, naming the host as
// given and nothing else. Regression for issue 11: the messages told which internal names
// resolve, and to which range.
func TestValidateURLDoesNotRevealResolvedAddresses(t *testing.T) {
	t.Parallel()
	msg := func(raw string) string {
		err := webhook.ValidateURL(context.Background(), raw, nil, testResolver())
		if err == nil {
			t.Fatalf("ValidateURL(%q) accepted", raw)
		}
		return err.Error()
	}
	internal, nowhere, literal := msg("https://internal.corp/"), msg("https://nowhere.example/"), msg("https://10.0.0.5/")
	if strings.ReplaceAll(internal, "internal.corp", "H") != strings.ReplaceAll(nowhere, "nowhere.example", "H") ||
		strings.ReplaceAll(internal, "internal.corp", "H") != strings.ReplaceAll(literal, "10.0.0.5", "H") {
		t.Fatalf("messages differ:\n%s\n%s\n%s", internal, nowhere, literal)
	}
	if !strings.Contains(internal, `"internal.corp"`) || strings.Contains(internal, "10.0.0.5") || strings.Contains(internal, "RFC") {
		t.Fatalf("message %q: want the host named, and neither the address nor its range", internal)
	}
}

func mustCIDR(t testing.TB, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func FuzzValidateURL(f *testing.F) {
	for _, seed := range []string{
		"https://example.org/hook", "http://127.0.0.1:9000/", "http://[::ffff:10.0.0.1]/", "https://user@example.org",
		"http://[fe80::1%25eth0]/", "ftp://x", "http://example.org:99999", "http://rebind.example/", "", "http://%zz",
	} {
		f.Add(seed)
	}
	res := testResolver()
	f.Fuzz(func(t *testing.T, raw string) {
		err := webhook.ValidateURL(context.Background(), raw, nil, res)
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidURL) {
				t.Fatalf("ValidateURL(%q) = %v, which does not wrap ErrInvalidURL", raw, err)
			}
			return
		}
		// Whatever passed must be an http(s) URL with a host, no credentials, and only public
		// addresses.
		u, perr := url.Parse(raw)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
			t.Fatalf("ValidateURL accepted %q", raw)
		}
		if addr, aerr := netip.ParseAddr(u.Hostname()); aerr == nil && webhook.IsBlocked(addr) {
			t.Fatalf("ValidateURL accepted blocked literal %q", raw)
		}
		for _, a := range res[u.Hostname()] {
			if webhook.IsBlocked(netip.MustParseAddr(a)) {
				t.Fatalf("ValidateURL accepted %q, which resolves to %s", raw, a)
			}
		}
	})
}
