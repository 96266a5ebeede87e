package webhook_test

import (
	"net/netip"
	"testing"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func TestIsBlocked(t *testing.T) {
	t.Parallel()
	blocked := []string{
		// IPv4 special-purpose ranges.
		"0.0.0.0", "0.1.2.3", // "this network", unspecified
		"10.0.0.1", "10.255.255.255", // RFC 1918
		"172.16.0.1", "172.31.255.254",
		"192.168.0.1", "192.168.255.255",
		"100.64.0.1", "100.127.255.254", // carrier-grade NAT
		"127.0.0.1", "127.255.255.254", // loopback
		"169.254.169.254", "169.254.0.1", // link-local, cloud metadata
		"192.0.0.8", "192.0.0.170", // IETF protocol assignments
		"192.0.2.1", "198.51.100.7", "203.0.113.200", // documentation
		"198.18.0.1", "198.19.255.254", // benchmarking
		"192.88.99.1",                  // 6to4 relay anycast
		"224.0.0.1", "239.255.255.250", // multicast
		"240.0.0.1", "255.255.255.254", "255.255.255.255", // reserved, broadcast
		// IPv6.
		"::", "::1",
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:0.0.0.0", // IPv4-mapped
		"::127.0.0.1", "::10.0.0.1", // IPv4-compatible
		"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", // NAT64 of blocked IPv4
		"64:ff9b:1::1",                   // local-use NAT64
		"100::1",                         // discard-only
		"2001::1", "2001:0:4136:e378::1", // Teredo
		"2001:2::1", "2001:10::1", // benchmarking, ORCHID
		"2001:db8::1", "2001:db8:ffff::1", // documentation
		"2002:7f00:1::1", "2002:c000:204::1", // 6to4
		"3fff::1",                 // documentation (RFC 9637)
		"5f00::1",                 // segment routing
		"fc00::1", "fd12:3456::1", // unique local
		"fe80::1", "fe80::1%eth0", // link-local, with a zone
		"fec0::1",              // site-local
		"ff02::1", "ff05::1:3", // multicast
		"4000::1", "8000::1", "e000::1", // outside 2000::/3
		"::ffff:0:7f00:1", // IPv4-translated (SIIT)
	}
	public := []string{
		"1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0",
		"172.15.255.255", "172.32.0.0", "192.0.1.1", "192.169.0.1", "198.17.255.255",
		"198.20.0.0", "223.255.255.255", "169.253.255.255", "11.0.0.0", "126.255.255.255",
		"::ffff:8.8.8.8", "64:ff9b::808:808",
		"2606:4700:4700::1111", "2a00:1450:4001:82a::200e", "2001:4860:4860::8888",
		"2001:200::1", "2003::1", "3ffe::1", "2c0f:f248::1",
	}
	for _, s := range blocked {
		addr := netip.MustParseAddr(s)
		reason, isBlocked := webhook.BlockedReason(addr)
		if !isBlocked || reason == "" {
			t.Errorf("BlockedReason(%s) = %q, %v; want blocked", s, reason, isBlocked)
		}
		if !webhook.IsBlocked(addr) {
			t.Errorf("IsBlocked(%s) = false", s)
		}
	}
	for _, s := range public {
		if reason, isBlocked := webhook.BlockedReason(netip.MustParseAddr(s)); isBlocked {
			t.Errorf("BlockedReason(%s) = %q; want public", s, reason)
		}
	}
	if !webhook.IsBlocked(netip.Addr{}) {
		t.Error("the zero Addr is not blocked")
	}
}

func TestBlockedReasonNamesTheRange(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"10.1.2.3":         "private network (RFC 1918)",
		"::ffff:127.0.0.1": "IPv4-mapped loopback (RFC 1122)",
		"169.254.169.254":  "link-local (RFC 3927)",
		"fd00::1":          "unique local address, private network (RFC 4193)",
	} {
		if got, _ := webhook.BlockedReason(netip.MustParseAddr(addr)); got != want {
			t.Errorf("BlockedReason(%s) = %q, want %q", addr, got, want)
		}
	}
}

// An IPv4 address and its IPv4-mapped IPv6 form are always judged alike.
func FuzzIsBlockedMapped(f *testing.F) {
	for _, seed := range [][4]byte{{127, 0, 0, 1}, {10, 0, 0, 1}, {8, 8, 8, 8}, {100, 64, 0, 0}, {255, 255, 255, 255}} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, a, b, c, d byte) {
		v4 := netip.AddrFrom4([4]byte{a, b, c, d})
		mapped := netip.AddrFrom16(v4.As16())
		if webhook.IsBlocked(v4) != webhook.IsBlocked(mapped) {
			t.Fatalf("IsBlocked(%s) = %v but IsBlocked(%s) = %v", v4, webhook.IsBlocked(v4), mapped, webhook.IsBlocked(mapped))
		}
	})
}
