package webhook

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// BlockedAddressError reports an address that is not public and not inside the allowed
// networks. It matches ErrBlockedAddress with errors.Is.
type BlockedAddressError struct {
	// Addr is the refused address.
	Addr netip.Addr
	// Reason names the special-purpose range Addr is in, such as "private network (RFC 1918)".
	Reason string
}

// Error implements error.
func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("%s is not a public address: %s", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrBlockedAddress) true.
func (e *BlockedAddressError) Is(target error) bool { return target == ErrBlockedAddress }

// specialRange is a special-purpose address range that deliveries never go to.
type specialRange struct {
	prefix netip.Prefix
	reason string
}

// blockedRanges are the special-purpose ranges of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries that are not globally reachable unicast, plus the deprecated transition ranges that
// tunnel to arbitrary IPv4 addresses. The first match names the reason. It is a read-only table.
var blockedRanges = [...]specialRange{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (RFC 791)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space, carrier-grade NAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (RFC 1122)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (RFC 5771)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast (RFC 919)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112)"},

	{netip.MustParsePrefix("::/128"), "unspecified (RFC 4291)"},
	{netip.MustParsePrefix("::1/128"), "loopback (RFC 4291)"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible, deprecated (RFC 4291)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo tunnelling (RFC 4380)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking (RFC 5180)"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (RFC 2928)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("2002::/16"), "6to4 tunnelling (RFC 3056)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637)"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing (RFC 9602)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local address, private network (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (RFC 4291)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local, deprecated (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (RFC 4291)"},
}

var (
	// ipv6GlobalUnicast is the only IPv6 space allocated for global unicast (RFC 4291);
	// everything outside it is special.
	ipv6GlobalUnicast = netip.MustParsePrefix("2000::/3")
	// nat64WellKnown embeds an IPv4 address in its last 32 bits (RFC 6052); it is as public as
	// that address.
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
)

// IsBlocked reports whether deliveries must not go to addr (unless it is in an allowed network):
// loopback, private, link-local, multicast, unspecified, broadcast, carrier-grade NAT,
// documentation, benchmarking and other special-purpose addresses, including IPv4-mapped and
// NAT64 forms of them. The zero Addr is blocked.
func IsBlocked(addr netip.Addr) bool {
	_, blocked := BlockedReason(addr)
	return blocked
}

// BlockedReason is IsBlocked that also names the range addr is in.
func BlockedReason(addr netip.Addr) (reason string, blocked bool) {
	if !addr.IsValid() {
		return "invalid address", true
	}
	addr = addr.WithZone("")
	if addr.Is4In6() {
		if reason, blocked := BlockedReason(addr.Unmap()); blocked {
			return "IPv4-mapped " + reason, true
		}
		return "", false
	}
	if nat64WellKnown.Contains(addr) {
		b := addr.As16()
		if reason, blocked := BlockedReason(netip.AddrFrom4([4]byte(b[12:]))); blocked {
			return "NAT64 of " + reason, true
		}
		return "", false
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return r.reason, true
		}
	}
	if addr.Is6() && !ipv6GlobalUnicast.Contains(addr) {
		return "reserved, outside IPv6 global unicast 2000::/3 (RFC 4291)", true
	}
	return "", false
}

// addressGuard applies IsBlocked with the allowed networks as exceptions.
type addressGuard struct {
	allow []netip.Prefix
}

// newAddressGuard converts allow to prefixes.
func newAddressGuard(allow []*net.IPNet) (addressGuard, error) {
	g := addressGuard{allow: make([]netip.Prefix, 0, len(allow))}
	for _, n := range allow {
		if n == nil {
			continue
		}
		addr, ok := netip.AddrFromSlice(n.IP)
		ones, bits := n.Mask.Size()
		if !ok || bits == 0 {
			return addressGuard{}, fmt.Errorf("allowed network %s: not a CIDR", n)
		}
		if bits == 32 {
			addr = addr.Unmap()
		}
		p, err := addr.Prefix(ones)
		if err != nil {
			return addressGuard{}, fmt.Errorf("allowed network %s: %w", n, err)
		}
		g.allow = append(g.allow, p)
	}
	return g, nil
}

// check returns a *BlockedAddressError for an address deliveries must not go to.
func (g addressGuard) check(addr netip.Addr) error {
	addr = addr.WithZone("")
	for _, p := range g.allow {
		if p.Contains(addr) || p.Contains(addr.Unmap()) {
			return nil
		}
	}
	if reason, blocked := BlockedReason(addr); blocked {
		return &BlockedAddressError{Addr: addr, Reason: reason}
	}
	return nil
}

// control is a net.Dialer Control function. It runs on every socket after the name has been
// resolved and before connect, so it judges the address actually dialled: a DNS answer that
// changes between registration and delivery (DNS rebinding) cannot slip through.
func (g addressGuard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: dial address %q is not an IP address", ErrBlockedAddress, address)
	}
	return g.check(ap.Addr())
}
