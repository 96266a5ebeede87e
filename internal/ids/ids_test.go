package ids

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestNewFormat: the format every time-ordered id had before this package: the prefix, then
// the UUID's canonical text without dashes.
func TestNewFormat(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^evt_[0-9a-f]{32}$`)
	prev := ""
	for range 1000 {
		id := New("evt_")
		if !re.MatchString(id) {
			t.Fatalf("New = %q, want evt_ and 32 lowercase hex digits", id)
		}
		u, err := uuid.Parse(strings.TrimPrefix(id, "evt_"))
		if err != nil || u.Version() != 7 {
			t.Fatalf("%q is not a UUIDv7 (%v, version %d)", id, err, u.Version())
		}
		if strings.ReplaceAll(u.String(), "-", "") != strings.TrimPrefix(id, "evt_") {
			t.Fatalf("%q differs from its UUID's text %s", id, u)
		}
		if id <= prev {
			t.Fatalf("%q after %q: ids must grow", id, prev)
		}
		prev = id
	}
}

// TestRandomFormat: prefix, then 16 base64url characters decoding to 12 bytes; no repeats.
func TestRandomFormat(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^usr_[A-Za-z0-9_-]{16}$`)
	seen := make(map[string]bool)
	for range 1000 {
		id := Random("usr_")
		if !re.MatchString(id) {
			t.Fatalf("Random = %q, want usr_ and 16 base64url characters", id)
		}
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(id, "usr_")); err != nil || len(b) != 12 {
			t.Fatalf("%q: %d bytes, %v", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
	}
}
