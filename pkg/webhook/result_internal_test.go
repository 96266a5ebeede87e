package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		name   string
		parent context.Context
		err    error
		want   ErrorCode
	}{
		{"blocked", live, opErr(&BlockedAddressError{Addr: netip.MustParseAddr("10.0.0.1"), Reason: "private"}), CodeBlockedAddress},
		{"blocked while canceled", canceled, opErr(&BlockedAddressError{}), CodeBlockedAddress},
		{"caller canceled", canceled, context.Canceled, CodeCanceled},
		{"attempt deadline", live, context.DeadlineExceeded, CodeTimeout},
		{"i/o timeout", live, opErr(os.ErrDeadlineExceeded), CodeTimeout},
		{"no such host", live, opErr(&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}), CodeDNS},
		{"DNS timeout", live, opErr(&net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}), CodeTimeout},
		{"unknown authority", live, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, CodeTLS},
		{"hostname mismatch", live, x509.HostnameError{Host: "x"}, CodeTLS},
		{"not TLS", live, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, CodeTLS},
		{"remote alert", live, opErr(errors.New("remote error: tls: handshake failure")), CodeTLS},
		{"refused", live, opErr(syscall.ECONNREFUSED), CodeConnection},
		{"reset", live, opErr(syscall.ECONNRESET), CodeConnection},
		{"EOF", live, fmt.Errorf("reading: %w", errors.New("EOF")), CodeConnection},
	}
	for _, tt := range tests {
		if got := classify(tt.parent, tt.err); got != tt.want {
			t.Errorf("%s: classify(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}
