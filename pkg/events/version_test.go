package events

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestVersionAtLeast(t *testing.T) {
	t.Parallel()
	cases := []struct {
		have string
		ok   bool
	}{
		{"2.10.0", true}, {"2.10.22", true}, {"2.11.0", true}, {"3.0.0", true}, {"v2.12.1", true},
		{"2.9.10", false}, {"2.9.99", false}, {"1.4.0", false}, {"2.10.0-beta.1", true}, {"", false},
	}
	for _, c := range cases {
		if got := versionAtLeast(c.have, "2.10.0"); got != c.ok {
			t.Errorf("versionAtLeast(%q) = %v", c.have, got)
		}
	}
}

// TestOldServerRefused uses the machine's own NATS server (2.9, older than we support) when
// one listens on 127.0.0.1:4222: a real old server must be refused with a clear error.
func TestOldServerRefused(t *testing.T) {
	t.Parallel()
	c, err := net.DialTimeout("tcp", "127.0.0.1:4222", 500*time.Millisecond)
	if err != nil {
		t.Skip("no NATS server on 127.0.0.1:4222 to try an old version against")
	}
	c.Close()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Skipf("cannot connect: %v", err)
	}
	defer nc.Close()
	err = CheckServerVersion(nc)
	if versionAtLeast(nc.ConnectedServerVersion(), MinServerVersion) {
		if err != nil {
			t.Fatalf("%s refused: %v", nc.ConnectedServerVersion(), err)
		}
		return
	}
	if !errors.Is(err, ErrServerTooOld) || !strings.Contains(err.Error(), "2.10.0") {
		t.Fatalf("old server %s: got %v", nc.ConnectedServerVersion(), err)
	}
}
