package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type clientAddrKey struct{}

// ClientIP is the address a request came from, for rate limiting and logs: the one
// ClientAddress found, or else the TCP peer.
func ClientIP(r *http.Request) string {
	if a, ok := r.Context().Value(clientAddrKey{}).(string); ok {
		return a
	}
	return peerHost(r.RemoteAddr)
}

func peerHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// ClientAddress wraps h so that ClientIP reads each request's client address, found once:
// the TCP peer, unless the peer is inside trusted (TRUSTED_PROXIES). Then X-Forwarded-For
// is read from the right, each proxy having appended the address it got the request from, and
// the first address that is not itself a trusted proxy is the client. Anything left of it was
// written by the client and is ignored, so a client cannot choose its address. With trusted
// empty X-Forwarded-For is never read.
func ClientAddress(trusted []netip.Prefix, h http.Handler) http.Handler {
	if len(trusted) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := ClientAddr(trusted, r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, addr)))
	})
}

// maxForwardedHops bounds how many X-Forwarded-For entries are read: no real chain of trusted
// proxies is longer.
const maxForwardedHops = 32

// ClientAddr is ClientAddress's rule for one request: its peer address (host:port) and its
// X-Forwarded-For header lines in order.
func ClientAddr(trusted []netip.Prefix, remoteAddr string, forwarded []string) string {
	peer := peerHost(remoteAddr)
	cur, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(trusted, cur) {
		return peer
	}
	var hops []string
	for _, line := range forwarded {
		hops = append(hops, strings.Split(line, ",")...)
	}
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedHops; i, n = i-1, n+1 {
		a, ok := parseHop(hops[i])
		if !ok {
			// Not an address a proxy writes: the hop we trust last is as far as we can go.
			break
		}
		cur = a
		if !isTrusted(trusted, a) {
			break
		}
	}
	return cur.String()
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a port or in
// brackets.
func parseHop(s string) (netip.Addr, bool) {
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

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
