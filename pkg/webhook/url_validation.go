package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// MaxURLLength bounds a webhook URL.
	MaxURLLength = 2048
	// lookupTimeout bounds ValidateURL's name lookup when ctx has no deadline.
	lookupTimeout = 10 * time.Second
)

// Resolver looks up the addresses of a host name. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// ValidateURL checks a webhook URL at registration: an absolute http or https URL of at most
// MaxURLLength bytes, without user credentials, with a host and a valid port, whose host is (or
// resolves only to) public addresses, or addresses inside allow. A nil resolver means
// net.DefaultResolver. The error wraps ErrInvalidURL (and ErrBlockedAddress for a non-public
// address) and its message is fit to show the person registering the URL.
//
// The dispatcher checks the address again at each connection, which is the check that counts:
// DNS answers can change after registration.
func ValidateURL(ctx context.Context, rawURL string, allow []*net.IPNet, resolver Resolver) error {
	if len(rawURL) > MaxURLLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, MaxURLLength)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme must be http or https", ErrInvalidURL)
	}
	if u.Opaque != "" {
		return fmt.Errorf("%w: want an absolute URL such as https://example.org/hook", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL are not allowed", ErrInvalidURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: host is required", ErrInvalidURL)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: invalid port %q", ErrInvalidURL, port)
		}
	}
	guard, err := newAddressGuard(allow)
	if err != nil {
		return fmt.Errorf("validating webhook URL: %w", err)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := guard.check(addr); err != nil {
			return &hostRefusedError{host: host, blocked: true}
		}
		return nil
	}
	if strings.ContainsAny(host, " \t%") {
		return fmt.Errorf("%w: invalid host %q", ErrInvalidURL, host)
	}

	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return &hostRefusedError{host: host}
	}
	for _, addr := range addrs {
		if err := guard.check(addr); err != nil {
			return &hostRefusedError{host: host, blocked: true}
		}
	}
	return nil
}

// hostRefusedError refuses a URL's host: a literal that is not public, a name that resolves
// to an address that is not, or a name that does not resolve. Its message is the same for all
// three and names only the host as given, so registering URLs cannot be used to learn which
// internal names exist or what they resolve to (nor the DNS server's address); the owner of a
// mistyped host still sees which host was refused and why. errors.Is tells the cases apart
// for callers in this process: ErrBlockedAddress is matched only for a non-public address.
type hostRefusedError struct {
	host    string
	blocked bool
}

// HostRefusal is the message of a refused host, at registration and in test sends.
func HostRefusal(host string) string {
	return fmt.Sprintf("host %q must be a public address, or a name that resolves only to public addresses", host)
}

func (e *hostRefusedError) Error() string { return ErrInvalidURL.Error() + ": " + HostRefusal(e.host) }

func (e *hostRefusedError) Is(target error) bool {
	return target == ErrInvalidURL || (e.blocked && target == ErrBlockedAddress)
}
